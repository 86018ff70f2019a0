"""Azure ML CLI v2 job YAML -> typed, validated specs, with errors that name file and line.

Only the standard library, pydantic, PyYAML and :mod:`mill.errors` are used here, so every
layer above can depend on this package.
"""

from .command_job import CommandJob, Distribution, Limits, Resources
from .data_asset import DATA_ASSET_TYPES, DataAssetSpec, load_data_asset, parse_data_asset
from .datastore import (
    DATASTORE_TYPES,
    SECRET_REFERENCE,
    DatastoreSpec,
    load_datastore,
    parse_datastore,
)
from .environment import load_environment
from .expressions import Reference, command_references, render_command
from .inputs import (
    DATA_INPUT_TYPES,
    INPUT_MODES,
    INPUT_TYPES,
    LITERAL_INPUT_TYPES,
    OUTPUT_MODES,
    OUTPUT_TYPES,
    JobInput,
    JobOutput,
)
from .loading import load_command_job, parse_command_job
from .mltable import MLTableSpec, load_mltable_spec, parse_mltable_text
from .model import MODEL_TYPES, ModelSpec, load_model, parse_model
from .online import (
    AUTH_MODES,
    CodeConfiguration,
    DataCollector,
    DeploymentModel,
    OnlineDeploymentSpec,
    OnlineEndpointSpec,
    ProbeSettings,
    RequestSettings,
    ScaleSettings,
    load_online_deployment,
    load_online_endpoint,
    parse_online_deployment,
    parse_online_endpoint,
    parse_traffic,
)
from .overrides import apply_overrides
from .references import (
    AssetReference,
    classify_path,
    normalize_compute,
    parse_asset_reference,
    parse_datastore_uri,
)
from .yamldoc import YamlDocument, load_yaml

__all__ = [
    "AUTH_MODES",
    "DATASTORE_TYPES",
    "DATA_ASSET_TYPES",
    "DATA_INPUT_TYPES",
    "INPUT_MODES",
    "INPUT_TYPES",
    "LITERAL_INPUT_TYPES",
    "MODEL_TYPES",
    "OUTPUT_MODES",
    "OUTPUT_TYPES",
    "SECRET_REFERENCE",
    "AssetReference",
    "CodeConfiguration",
    "CommandJob",
    "DataAssetSpec",
    "DataCollector",
    "DatastoreSpec",
    "DeploymentModel",
    "Distribution",
    "JobInput",
    "JobOutput",
    "Limits",
    "MLTableSpec",
    "ModelSpec",
    "OnlineDeploymentSpec",
    "OnlineEndpointSpec",
    "ProbeSettings",
    "Reference",
    "RequestSettings",
    "Resources",
    "ScaleSettings",
    "YamlDocument",
    "apply_overrides",
    "classify_path",
    "command_references",
    "load_command_job",
    "load_data_asset",
    "load_datastore",
    "load_environment",
    "load_mltable_spec",
    "load_model",
    "load_online_deployment",
    "load_online_endpoint",
    "load_yaml",
    "normalize_compute",
    "parse_asset_reference",
    "parse_command_job",
    "parse_data_asset",
    "parse_datastore",
    "parse_datastore_uri",
    "parse_mltable_text",
    "parse_model",
    "parse_online_deployment",
    "parse_online_endpoint",
    "parse_traffic",
    "render_command",
]
