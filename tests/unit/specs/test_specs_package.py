"""The public surface of mill.specs and what it may import."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import mill.specs

PACKAGE = Path(mill.specs.__file__).parent
PUBLIC = {
    "load_yaml",
    "YamlDocument",
    "load_command_job",
    "load_environment",
    "parse_command_job",
    "apply_overrides",
    "CommandJob",
    "JobInput",
    "JobOutput",
    "Resources",
    "Distribution",
    "Limits",
    "INPUT_TYPES",
    "DATA_INPUT_TYPES",
    "LITERAL_INPUT_TYPES",
    "INPUT_MODES",
    "OUTPUT_TYPES",
    "OUTPUT_MODES",
    "command_references",
    "Reference",
    "render_command",
    "parse_datastore_uri",
    "parse_asset_reference",
    "AssetReference",
    "normalize_compute",
    "classify_path",
    # datastores, data assets, MLTable
    "DATASTORE_TYPES",
    "DATA_ASSET_TYPES",
    "SECRET_REFERENCE",
    "DatastoreSpec",
    "DataAssetSpec",
    "load_datastore",
    "parse_datastore",
    "load_data_asset",
    "parse_data_asset",
    "MLTableSpec",
    "load_mltable_spec",
    "parse_mltable_text",
    "MODEL_TYPES",
    "ModelSpec",
    "load_model",
    "parse_model",
    # online endpoints and deployments
    "AUTH_MODES",
    "OnlineEndpointSpec",
    "OnlineDeploymentSpec",
    "DeploymentModel",
    "CodeConfiguration",
    "RequestSettings",
    "ProbeSettings",
    "ScaleSettings",
    "DataCollector",
    "load_online_endpoint",
    "parse_online_endpoint",
    "load_online_deployment",
    "parse_online_deployment",
    "parse_traffic",
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_all_is_exactly_the_public_api() -> None:
    assert set(mill.specs.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(mill.specs, name) is not None


def test_constants() -> None:
    assert mill.specs.INPUT_TYPES == mill.specs.DATA_INPUT_TYPES + mill.specs.LITERAL_INPUT_TYPES
    assert "uri_folder" in mill.specs.OUTPUT_TYPES and "string" not in mill.specs.OUTPUT_TYPES
    assert mill.specs.INPUT_MODES[0] == "ro_mount"
    assert mill.specs.OUTPUT_MODES[0] == "rw_mount"


def test_imports_only_the_standard_library_pydantic_yaml_and_mill_errors() -> None:
    allowed_third_party = {"pydantic", "pydantic_core", "yaml"}
    allowed_mill = {"mill.errors", "mill.hashing"}
    for path in PACKAGE.glob("*.py"):
        for module in _imports(path):
            top = module.split(".")[0]
            if top == "mill":
                assert module in allowed_mill, f"{path.name} imports {module}"
            else:
                assert top in sys.stdlib_module_names or top in allowed_third_party, (
                    f"{path.name} imports {module}"
                )


def test_expressions_is_standard_library_only() -> None:
    for module in _imports(PACKAGE / "expressions.py"):
        assert module.split(".")[0] in sys.stdlib_module_names, module


def test_modules_stay_small() -> None:
    for path in PACKAGE.glob("*.py"):
        assert len(path.read_text().splitlines()) < 400, path.name
