"""Online endpoints and deployments (yaml-reference §16): good shapes load, bad ones are located."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mill.errors import SpecError, SpecIssue
from mill.specs import (
    DeploymentModel,
    OnlineDeploymentSpec,
    load_online_deployment,
    load_online_endpoint,
    parse_online_deployment,
    parse_online_endpoint,
    parse_traffic,
)

IMAGE = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest"
_NO_VALUE = object()


def _write(root: Path, name: str, text: str = "") -> Path:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text))
    return target


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder laid out like azureml-examples' endpoints/online/managed-sample."""
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "model-1/model/sklearn_regression_model.pkl", "pickle")
    _write(tmp_path, "model-1/onlinescoring/score.py", "def init(): ...\ndef run(raw): ...\n")
    _write(tmp_path, "model-1/environment/conda.yaml", "name: c\ndependencies: [python=3.11]\n")
    _write(tmp_path, "ncd/sklearn-diabetes/model/MLmodel", "flavors: {}\n")
    _write(tmp_path, "triton/models/model_1/config.pbtxt", 'backend: "onnxruntime"\n')
    return tmp_path


def _roundtrip(spec: OnlineDeploymentSpec) -> None:
    """What the client sends the server validates again to the same deployment."""
    wire = json.loads(json.dumps(spec.model_dump(mode="json", by_alias=True, exclude_none=True)))
    again = parse_online_deployment(wire)
    assert again.model_dump(by_alias=True) == spec.model_dump(by_alias=True)


# --- good endpoints -----------------------------------------------------------------------


def test_managed_endpoint_gets_defaults(project: Path) -> None:
    path = _write(
        project,
        "endpoint.yml",
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineEndpoint.schema.json
        name: my-endpoint
        auth_mode: key
        """,
    )
    endpoint = load_online_endpoint(path)
    assert endpoint.name == "my-endpoint"
    assert endpoint.type == "managed"
    assert endpoint.auth_mode == "key"
    assert endpoint.traffic == {} and endpoint.mirror_traffic == {}
    assert endpoint.notes == []
    assert parse_online_endpoint({"name": "my-endpoint"}).auth_mode == "key"


def test_kubernetes_endpoint_with_capitalised_auth_mode(project: Path) -> None:
    path = _write(
        project,
        "endpoint.yml",
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/kubernetesOnlineEndpoint.schema.json
        name: my-k8s-endpoint
        compute: azureml:inferencecompute
        auth_mode: Key
        """,
    )
    endpoint = load_online_endpoint(path)
    assert endpoint.auth_mode == "key"
    assert endpoint.type == "kubernetes"
    assert endpoint.compute == "azureml:inferencecompute"
    assert endpoint.notes == [
        "compute is accepted and ignored: replicas run on the Mill server's own machines, "
        "not on a Kubernetes cluster"
    ]


def test_ignored_endpoint_fields_are_kept_and_noted(project: Path) -> None:
    path = _write(
        project,
        "endpoint.yml",
        """\
        name: secure-endpoint
        auth_mode: AML_Token
        description: private
        tags: {team: ml}
        properties: {enforce_access_to_default_secret_stores: enabled}
        identity:
          type: user_assigned
          user_assigned_identities:
            - resource_id: /subscriptions/s/resourceGroups/g/providers/x/identities/uai
        public_network_access: Disabled
        traffic: {blue: "90", green: 10}
        mirror_traffic: {red: 20}
        """,
    )
    endpoint = load_online_endpoint(path)
    assert endpoint.auth_mode == "aml_token"
    assert endpoint.public_network_access == "disabled"
    assert endpoint.identity is not None and endpoint.identity["type"] == "user_assigned"
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert endpoint.mirror_traffic == {"red": 20}
    assert endpoint.tags == {"team": "ml"}
    assert [note.split(" ", 1)[0] for note in endpoint.notes] == [
        "identity",
        "public_network_access",
    ]
    assert "local replicas run as the server's user" in endpoint.notes[0]


# --- good deployments ---------------------------------------------------------------------


def test_code_model_and_environment_resolve_against_the_yaml_folder(project: Path) -> None:
    path = _write(
        project,
        "endpoints/online/managed/sample/blue-deployment.yml",
        f"""\
        $schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
        name: blue
        endpoint_name: my-endpoint
        model:
          path: ../../../../model-1/model/
        code_configuration:
          code: ../../../../model-1/onlinescoring/
          scoring_script: score.py
        environment:
          conda_file: file:../../../../model-1/environment/conda.yaml
          image: {IMAGE}
        instance_type: Standard_DS3_v2
        instance_count: 1
        environment_variables:
          KV_SECRET: ${{{{secrets.multiplier}}}}
          THREADS: 4
        """,
    )
    spec = load_online_deployment(path)
    assert isinstance(spec.model, DeploymentModel)
    assert spec.model.path == str(project / "model-1/model")
    assert spec.model.raw_path == "../../../../model-1/model/"
    assert spec.model.type == "custom_model"
    assert spec.code_configuration is not None
    assert spec.code_configuration.code == str(project / "model-1/onlinescoring")
    assert spec.code_configuration.raw_code == "../../../../model-1/onlinescoring/"
    assert spec.code_configuration.scoring_script == "score.py"
    assert spec.environment == {
        "image": IMAGE,
        "conda_file": str(project / "model-1/environment/conda.yaml"),
        "tags": {},
    }
    assert spec.environment_variables == {"KV_SECRET": "${{secrets.multiplier}}", "THREADS": "4"}
    assert spec.endpoint_name == "my-endpoint"
    assert spec.type == "managed"
    assert spec.instance_type == "Standard_DS3_v2"
    assert spec.deployment_kind() == "code"
    # Azure's defaults for everything not written.
    assert spec.instance_count == 1
    assert spec.request_settings.model_dump() == {
        "request_timeout_ms": 5000,
        "max_concurrent_requests_per_instance": 1,
        "max_queue_wait_ms": 500,
    }
    defaults = {
        "initial_delay": 10,
        "period": 10,
        "timeout": 2,
        "failure_threshold": 30,
        "success_threshold": 1,
    }
    assert spec.liveness_probe.model_dump() == defaults
    assert spec.readiness_probe.model_dump() == defaults
    assert spec.scale_settings.type == "default"
    assert spec.scale_settings.min_instances is None
    assert spec.data_collector is None
    assert spec.notes == []
    _roundtrip(spec)


def test_no_code_mlflow_deployment(project: Path) -> None:
    path = _write(
        project,
        "ncd/sklearn-deployment.yaml",
        """\
        name: sklearn-deployment
        endpoint_name: ncd-endpoint
        model:
          name: sklearn-diabetes-mlflow
          version: 1
          path: sklearn-diabetes/model
          type: MLflow_Model
        instance_type: Standard_DS3_v2
        instance_count: 1
        """,
    )
    spec = load_online_deployment(path)
    assert isinstance(spec.model, DeploymentModel)
    assert spec.model.type == "mlflow_model"
    assert spec.model.version == "1"
    assert spec.model.path == str(project / "ncd/sklearn-diabetes/model")
    assert spec.code_configuration is None and spec.environment is None
    assert spec.deployment_kind() == "mlflow"
    _roundtrip(spec)


def test_mlflow_model_with_a_scoring_script_needs_no_environment(project: Path) -> None:
    path = _write(
        project,
        "deployment.yml",
        """\
        name: mlflow-code
        model: {path: ncd/sklearn-diabetes/model, type: mlflow_model}
        code_configuration: {code: model-1/onlinescoring, scoring_script: score.py}
        """,
    )
    spec = load_online_deployment(path)
    assert spec.environment is None
    assert spec.deployment_kind() == "code"


def test_triton_deployment(project: Path) -> None:
    path = _write(
        project,
        "triton/deployment.yml",
        """\
        name: blue
        endpoint_name: triton-endpoint
        model:
          name: sample-densenet-onnx-model
          version: 1
          path: ./models
          type: triton_model
        instance_count: 1
        instance_type: Standard_NC6s_v3
        """,
    )
    spec = load_online_deployment(path)
    assert spec.deployment_kind() == "triton"
    assert isinstance(spec.model, DeploymentModel)
    assert spec.model.path == str(project / "triton/models")


@pytest.mark.parametrize(
    "reference",
    [
        "azureml:my-model:1",
        "azureml:my-model@latest",
        "azureml://registries/azureml/models/phi-3/versions/7",
        "azureml://registries/azureml/models/phi-3/labels/latest",
    ],
)
def test_model_references(project: Path, reference: str) -> None:
    path = _write(project, "deployment.yml", f"name: demo\nmodel: {reference}\n")
    spec = load_online_deployment(path)
    assert spec.model == reference
    assert spec.deployment_kind() == "model"


def test_inline_custom_model_without_code_is_left_to_the_service(project: Path) -> None:
    spec = parse_online_deployment({"name": "onnx", "model": {"path": "model"}})
    assert spec.deployment_kind() == "model"
    assert isinstance(spec.model, DeploymentModel) and spec.model.path == "model"


def test_kubernetes_deployment_with_every_tuning_block(project: Path) -> None:
    path = _write(
        project,
        "k8s/blue-deployment.yml",
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/kubernetesOnlineDeployment.schema.json
        name: blue
        endpoint_name: my-k8s-endpoint
        model: azureml:my-model:3
        code_configuration:
          code: ../model-1/onlinescoring
          scoring_script: score.py
        environment: azureml:AzureML-sklearn-1.5@latest
        request_settings:
          request_timeout_ms: "3000"
          max_queue_wait_ms: 0
          max_concurrent_requests_per_instance: 2
        liveness_probe:
          initial_delay: 180
          period: 180
          timeout: 299
          failure_threshold: 49
        readiness_probe: {initial_delay: 5, success_threshold: 2}
        scale_settings:
          type: target_utilization
          min_instances: 2
          max_instances: 5
        resources:
          requests: {cpu: "0.1", memory: "0.1Gi"}
          limits: {cpu: "0.2", memory: 200Mi}
        data_collector:
          collections:
            model_inputs: {enabled: 'true'}
            model_outputs: {enabled: 'False'}
            custom_logging: {enabled: true}
          sampling_rate: 0.5
          rolling_rate: Day
        app_insights_enabled: true
        egress_public_network_access: disabled
        instance_type: defaultinstancetype
        instance_count: "2"
        """,
    )
    spec = load_online_deployment(path)
    assert spec.type == "kubernetes"
    assert spec.instance_count == 2
    assert spec.request_settings.request_timeout_ms == 3000
    assert spec.request_settings.max_queue_wait_ms == 0
    assert spec.request_settings.max_concurrent_requests_per_instance == 2
    assert spec.liveness_probe.timeout == 299
    assert spec.liveness_probe.success_threshold == 1
    assert spec.readiness_probe.initial_delay == 5
    assert spec.readiness_probe.success_threshold == 2
    assert spec.readiness_probe.period == 10
    assert spec.scale_settings.model_dump() == {
        "type": "target_utilization",
        "min_instances": 2,
        "max_instances": 5,
        "polling_interval": 1,
        "target_utilization_percentage": 70,
    }
    assert spec.resources == {
        "requests": {"cpu": "0.1", "memory": "0.1Gi"},
        "limits": {"cpu": "0.2", "memory": "200Mi"},
    }
    collector = spec.data_collector
    assert collector is not None
    assert {k: v.enabled for k, v in collector.collections.items()} == {
        "model_inputs": True,
        "model_outputs": False,
        "custom_logging": True,
    }
    assert collector.sampling_rate == 0.5 and collector.rolling_rate == "day"
    assert spec.environment == "azureml:AzureML-sklearn-1.5@latest"
    assert [note.split(" ", 1)[0] for note in spec.notes] == [
        "egress_public_network_access",
        "app_insights_enabled",
        "resources",
    ]
    _roundtrip(spec)


def test_target_utilization_alone_gets_azures_defaults() -> None:
    spec = parse_online_deployment(
        {"name": "blue", "model": "azureml:m:1", "scale_settings": {"type": "TargetUtilization"}}
    )
    assert spec.scale_settings.model_dump() == {
        "type": "target_utilization",
        "min_instances": 1,
        "max_instances": 1,
        "polling_interval": 1,
        "target_utilization_percentage": 70,
    }


def test_environment_file_and_build_context_resolve_against_their_own_files(
    project: Path,
) -> None:
    _write(project, "envs/env.yml", "name: e\nbuild: {path: docker-context}\n")
    _write(project, "envs/docker-context/Dockerfile", "FROM python:3.11\n")
    path = _write(
        project,
        "deploy/deployment.yml",
        """\
        name: byoc
        model: {path: ../model-1/model}
        code_configuration: {code: ../model-1/onlinescoring, scoring_script: score.py}
        environment: file:../envs/env.yml
        """,
    )
    spec = load_online_deployment(path)
    assert spec.environment == {
        "name": "e",
        "build": {"path": str(project / "envs/docker-context")},
        "tags": {},
    }


def test_a_json_body_keeps_local_paths_as_given() -> None:
    spec = parse_online_deployment(
        {
            "name": "blue",
            "model": {"path": "azureml://datastores/workspaceblobstore/paths/m/"},
            "code_configuration": {"code": "snapshot:" + "a" * 64, "scoring_script": "score.py"},
            "environment": {"image": "python:3.11", "conda_file": "conda.yaml"},
        }
    )
    assert spec.code_configuration is not None
    assert spec.code_configuration.code == "snapshot:" + "a" * 64
    assert spec.environment == {"image": "python:3.11", "conda_file": "conda.yaml", "tags": {}}


def test_set_overrides_apply_before_validation(project: Path) -> None:
    path = _write(
        project,
        "deployment.yml",
        """\
        name: blue
        model: azureml:m:1
        code_configuration: {code: model-1/onlinescoring, scoring_script: <SCORING_SCRIPT>}
        environment: azureml:env:1
        """,
    )
    spec = load_online_deployment(
        path, ["code_configuration.scoring_script=score.py", "instance_count=3"]
    )
    assert spec.code_configuration is not None
    assert spec.code_configuration.scoring_script == "score.py"
    assert spec.instance_count == 3
    with pytest.raises(SpecError) as raised:
        load_online_deployment(path, ["instance_count=0"])
    assert [i.render() for i in raised.value.issues] == [
        f"{path}:3 code_configuration.scoring_script: a placeholder, not a script: replace it "
        "(for example with --set); allowed: a Python file inside code; got '<SCORING_SCRIPT>'",
        "--set instance_count=0 instance_count: expected an integer >= 1; got 0",
    ]


# --- bad files ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # "endpoint" or "deployment"
    yaml: str
    field: str
    line: int | None
    value: Any = _NO_VALUE
    allowed: str | None = None  # text the rendered issue must contain (what is allowed)
    message: str | None = None  # more text the rendered issue must contain


NAME_RULE = "3-32 letters, digits and '-', starting with a letter and not ending with '-'"
CODE = "code_configuration: {code: model-1/onlinescoring, scoring_script: score.py}"
ENV = "environment: azureml:AzureML-sklearn-1.5@latest"

ENDPOINT_CASES = [
    Case("name-too-short", "endpoint", "name: ab\n", "name", 1, "ab", NAME_RULE, "invalid endpoint name"),
    Case("name-trailing-dash", "endpoint", "auth_mode: key\nname: my-endpoint-\n", "name", 2, "my-endpoint-", NAME_RULE),
    Case("name-starts-with-digit", "endpoint", "name: 1endpoint\n", "name", 1, "1endpoint", NAME_RULE),
    Case("name-too-long", "endpoint", f"name: {'e' * 33}\n", "name", 1, "e" * 33, NAME_RULE),
    Case("name-underscore", "endpoint", "name: my_endpoint\n", "name", 1, "my_endpoint", NAME_RULE),
    Case("name-placeholder", "endpoint", "name: <ENDPOINT_NAME>\n", "name", 1, "<ENDPOINT_NAME>", NAME_RULE, "a placeholder"),
    Case("name-missing", "endpoint", "auth_mode: key\n", "name", None, message="required field is missing"),
    Case("unknown-field", "endpoint", "name: my-endpoint\nauth_mod: key\n", "auth_mod", 2, allowed="name, type, auth_mode, description", message="did you mean 'auth_mode'?"),
    Case("bad-auth-mode", "endpoint", "name: my-endpoint\nauth_mode: token\n", "auth_mode", 2, "token", "expected one of key, aml_token"),
    Case("aad-token", "endpoint", "name: my-endpoint\nauth_mode: aad_token\n", "auth_mode", 2, "aad_token", "key, aml_token", "aad_token is not supported by Mill: use key or aml_token"),
    Case("traffic-over-100", "endpoint", "name: my-endpoint\ntraffic:\n  blue: 90\n  green: 20\n", "traffic", 2, allowed="a total of at most 100", message="the percentages add up to 110"),
    Case("traffic-percent-too-big", "endpoint", "name: my-endpoint\ntraffic:\n  blue: 101\n", "traffic.blue", 3, 101, "an integer <= 100"),
    Case("traffic-percent-negative", "endpoint", "name: my-endpoint\ntraffic: {blue: -1}\n", "traffic.blue", 2, -1, "an integer >= 0"),
    Case("traffic-percent-text", "endpoint", "name: my-endpoint\ntraffic:\n  blue: most\n", "traffic.blue", 3, "most", "expected an integer"),
    Case("traffic-bad-deployment-name", "endpoint", "name: my-endpoint\ntraffic:\n  b: 100\n", "traffic.b", 3, "b", NAME_RULE, "invalid deployment name"),
    Case("mirror-two-deployments", "endpoint", "name: my-endpoint\nmirror_traffic: {blue: 10, green: 10}\n", "mirror_traffic", 2, {"blue": 10, "green": 10}, "one deployment=percent", "one deployment only"),
    Case("mirror-over-50", "endpoint", "name: my-endpoint\nmirror_traffic:\n  green: 60\n", "mirror_traffic.green", 3, 60, "an integer from 0 to 50", "at most 50 percent"),
    Case("mirror-and-live", "endpoint", "name: my-endpoint\ntraffic: {blue: 100}\nmirror_traffic:\n  blue: 10\n", "mirror_traffic.blue", 4, 10, message="cannot take live and mirrored traffic"),
    Case("public-network-access", "endpoint", "name: my-endpoint\npublic_network_access: off\n", "public_network_access", 2, False, "one of enabled, disabled"),
]  # fmt: skip

DEPLOYMENT_CASES = [
    Case("deployment-name", "deployment", "name: b\nmodel: azureml:m:1\n", "name", 1, "b", NAME_RULE, "invalid deployment name"),
    Case("deployment-endpoint-name", "deployment", "name: blue\nendpoint_name: My_Endpoint\nmodel: azureml:m:1\n", "endpoint_name", 2, "My_Endpoint", NAME_RULE),
    Case("deployment-unknown-field", "deployment", "name: blue\nmodel: azureml:m:1\ninstance_counts: 1\n", "instance_counts", 3, allowed="instance_type, instance_count, request_settings", message="did you mean 'instance_count'?"),
    Case("deployment-unknown-nested-field", "deployment", "name: blue\nmodel: azureml:m:1\nrequest_settings:\n  timeout_ms: 10\n", "request_settings.timeout_ms", 4, allowed="request_timeout_ms, max_concurrent_requests_per_instance, max_queue_wait_ms"),
    Case("deployment-bad-type", "deployment", "name: blue\nmodel: azureml:m:1\ntype: serverless\n", "type", 3, "serverless", "expected one of managed, kubernetes"),
    Case("instance-count-zero", "deployment", "name: blue\nmodel: azureml:m:1\ninstance_count: 0\n", "instance_count", 3, 0, "expected an integer >= 1"),
    Case("instance-count-text", "deployment", "name: blue\nmodel: azureml:m:1\ninstance_count: two\n", "instance_count", 3, "two", "expected an integer"),
    Case("instance-count-bool", "deployment", "name: blue\nmodel: azureml:m:1\ninstance_count: true\n", "instance_count", 3, True, "expected an integer"),
    Case("probe-timeout-negative", "deployment", "name: blue\nmodel: azureml:m:1\nliveness_probe:\n  timeout: -5\n", "liveness_probe.timeout", 4, -5, "expected an integer > 0"),
    Case("probe-unknown-field", "deployment", "name: blue\nmodel: azureml:m:1\nreadiness_probe: {delay: 5}\n", "readiness_probe.delay", 3, allowed="initial_delay, period, timeout, failure_threshold, success_threshold"),
    Case("request-timeout-negative", "deployment", "name: blue\nmodel: azureml:m:1\nrequest_settings:\n  request_timeout_ms: -1\n", "request_settings.request_timeout_ms", 4, -1, "expected an integer >= 1"),
    Case("request-timeout-over-azure-limit", "deployment", "name: blue\nmodel: azureml:m:1\nrequest_settings: {request_timeout_ms: 200000}\n", "request_settings.request_timeout_ms", 3, 200000, "expected an integer <= 180000"),
    Case("scale-min-over-max", "deployment", "name: blue\nmodel: azureml:m:1\nscale_settings:\n  type: target_utilization\n  min_instances: 5\n  max_instances: 2\n", "scale_settings.min_instances", 5, 5, "between 1 and max_instances (2)", "more than max_instances (2)"),
    Case("scale-field-on-default", "deployment", "name: blue\nmodel: azureml:m:1\nscale_settings:\n  type: default\n  max_instances: 3\n", "scale_settings.max_instances", 5, 3, "type: target_utilization", "only for target_utilization scaling"),
    Case("scale-target-over-100", "deployment", "name: blue\nmodel: azureml:m:1\nscale_settings: {type: target_utilization, target_utilization_percentage: 150}\n", "scale_settings.target_utilization_percentage", 3, 150, "expected an integer <= 100"),
    Case("scale-bad-type", "deployment", "name: blue\nmodel: azureml:m:1\nscale_settings: {type: auto}\n", "scale_settings.type", 3, "auto", "expected one of default, target_utilization"),
    Case("code-without-scoring-script", "deployment", f"name: blue\nmodel: azureml:m:1\n{ENV}\ncode_configuration:\n  code: model-1/onlinescoring\n", "code_configuration.scoring_script", 4, message="required field is missing"),
    Case("code-folder-missing", "deployment", f"name: blue\n{ENV}\ncode_configuration:\n  code: nosuch\n  scoring_script: score.py\n", "code_configuration.code", 4, "nosuch", message="no such file or folder"),
    Case("scoring-script-missing", "deployment", f"name: blue\n{ENV}\ncode_configuration:\n  code: model-1/onlinescoring\n  scoring_script: main.py\n", "code_configuration.scoring_script", 5, "main.py", "a Python file inside code", "no such file in the code folder"),
    Case("code-without-environment-custom-model", "deployment", f"name: blue\nmodel:\n  path: model-1/model\n{CODE}\n", "environment", None, allowed="azureml:<name>:<version>", message="needs an environment"),
    Case("code-without-environment-triton-model", "deployment", f"name: blue\nmodel: {{path: model-1/model, type: triton_model}}\n{CODE}\n", "environment", None, message="only an mlflow_model brings its own"),
    Case("code-without-environment-no-model", "deployment", f"name: blue\n{CODE}\n", "environment", None, message="needs an environment"),
    Case("neither-model-nor-code", "deployment", f"name: blue\n{ENV}\ninstance_count: 1\n", "model", None, allowed="code_configuration: {code, scoring_script}", message="needs a model, a code_configuration"),
    Case("model-path-missing", "deployment", "name: blue\nmodel:\n  path: nosuch/model\n", "model.path", 3, "nosuch/model", message="no such file or folder"),
    Case("model-path-is-a-reference", "deployment", "name: blue\nmodel:\n  path: azureml:m:1\n", "model.path", 3, "azureml:m:1", "a local file or folder", "not a model path"),
    Case("model-bad-type", "deployment", "name: blue\nmodel:\n  path: model-1/model\n  type: onnx_model\n", "model.type", 4, "onnx_model", "expected one of custom_model, mlflow_model, triton_model"),
    Case("model-unknown-field", "deployment", "name: blue\nmodel:\n  paht: model-1/model\n", "model.paht", 3, allowed="name, version, type, path", message="did you mean 'path'?"),
    Case("model-reference-without-version", "deployment", "name: blue\nmodel: azureml:my-model\n", "model", 2, "azureml:my-model", "azureml:my-model:<version> or azureml:my-model@latest", "needs a version or a label"),
    Case("model-reference-to-an-environment", "deployment", "name: blue\nmodel: azureml://registries/azureml/environments/sklearn-1.5/labels/latest\n", "model", 2, allowed="azureml://registries/<registry>/models/<name>/versions/<version>", message="not a model reference"),
    Case("model-local-path-string", "deployment", "name: blue\nmodel: ./model\n", "model", 2, "./model", "or an inline mapping {path, type, name, version}", "not a model reference"),
    Case("environment-not-a-reference", "deployment", f"name: blue\n{CODE}\nenvironment: python\n", "environment", 3, "python", "azureml:<name>:<version>", "not an environment reference"),
    Case("collector-enabled-yes", "deployment", "name: blue\nmodel: azureml:m:1\ndata_collector:\n  collections:\n    model_inputs: {enabled: 'yes'}\n", "data_collector.collections.model_inputs.enabled", 5, "yes", "true or false"),
    Case("collector-sampling-rate", "deployment", "name: blue\nmodel: azureml:m:1\ndata_collector:\n  collections: {model_inputs: {enabled: 'true'}}\n  sampling_rate: 2\n", "data_collector.sampling_rate", 5, 2, "<= 1"),
    Case("collector-no-collections", "deployment", "name: blue\nmodel: azureml:m:1\ndata_collector:\n  sampling_rate: 1\n", "data_collector.collections", 3, allowed="model_inputs", message="no collections"),
    Case("egress-bad", "deployment", "name: blue\nmodel: azureml:m:1\negress_public_network_access: closed\n", "egress_public_network_access", 3, "closed", "one of enabled, disabled"),
    Case("environment-variables-nested", "deployment", "name: blue\nmodel: azureml:m:1\nenvironment_variables:\n  A: {b: c}\n", "environment_variables.A", 4, {"b": "c"}, "a string"),
]  # fmt: skip

CASES = ENDPOINT_CASES + DEPLOYMENT_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_online_spec_is_reported_precisely(case: Case, project: Path) -> None:
    file = f"{case.kind}.yml"
    _write(project, file, case.yaml)
    load = load_online_endpoint if case.kind == "endpoint" else load_online_deployment

    with pytest.raises(SpecError) as raised:
        load(Path(file))

    issue = _issue_for(raised.value, file, case.field)
    assert issue.line == case.line
    if case.value is not _NO_VALUE:
        assert issue.has_value
        assert issue.value == case.value
    rendered = issue.render()
    where = file if case.line is None else f"{file}:{case.line}"
    assert rendered.startswith(f"{where} {case.field}: "), rendered
    if case.allowed is not None:
        assert case.allowed in rendered
    if case.message is not None:
        assert case.message in rendered
    if case.value is not _NO_VALUE and isinstance(case.value, str):
        assert f"got {case.value!r}" in rendered
    assert rendered in raised.value.message


def _issue_for(error: SpecError, file: str, field: str) -> SpecIssue:
    matching = [i for i in error.issues if i.field == field and i.file == file]
    assert matching, f"no issue for {file} {field!r} in:\n{error.message}"
    return matching[0]


def test_every_field_problem_of_a_deployment_is_reported_at_once(project: Path) -> None:
    _write(
        project,
        "deployment.yml",
        """\
        name: x
        model: azureml:m
        instance_count: 0
        liveness_probe: {period: 0}
        """,
    )
    with pytest.raises(SpecError) as raised:
        load_online_deployment(Path("deployment.yml"))
    located = [(i.line, i.field) for i in raised.value.issues]
    assert located == [
        (1, "name"),
        (2, "model"),
        (3, "instance_count"),
        (4, "liveness_probe.period"),
    ]


def test_server_side_errors_have_no_file() -> None:
    with pytest.raises(SpecError) as raised:
        parse_online_endpoint({"name": "my-endpoint", "auth_mode": "aad_token"})
    (issue,) = raised.value.issues
    assert issue.render() == (
        "auth_mode: aad_token is not supported by Mill: use key or aml_token; "
        "allowed: key, aml_token; got 'aad_token'"
    )
    with pytest.raises(SpecError) as raised:
        parse_online_deployment(["name", "blue"])  # type: ignore[arg-type]
    assert raised.value.issues[0].message == "expected a mapping of deployment fields"


# --- the --traffic and --mirror-traffic options -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blue=90 green=10", {"blue": 90, "green": 10}),
        ("blue=90,green=10", {"blue": 90, "green": 10}),
        (" blue=100 , green=0 ", {"blue": 100, "green": 0}),
        ("blue=0", {"blue": 0}),
    ],
)
def test_traffic_option(text: str, expected: dict[str, int]) -> None:
    assert parse_traffic(text) == expected


def test_mirror_traffic_option() -> None:
    assert parse_traffic("green=10", mirror=True) == {"green": 10}
    assert parse_traffic("green=0", mirror=True) == {"green": 0}


@pytest.mark.parametrize(
    ("text", "mirror", "expected"),
    [
        (
            "blue=90 green=20",
            False,
            "--traffic: the percentages add up to 110; allowed: a total of at most 100; "
            "got 'blue=90 green=20'",
        ),
        ("blue=ninety", False, "--traffic: not a percent for blue; allowed: an integer from 0 to 100; got 'blue=ninety'"),
        ("blue=-5", False, "--traffic: not a percent for blue; allowed: an integer from 0 to 100; got 'blue=-5'"),
        ("blue=101", False, "--traffic: not a percent for blue; allowed: an integer from 0 to 100; got 'blue=101'"),
        ("blue=1.5", False, "--traffic: not a percent for blue; allowed: an integer from 0 to 100; got 'blue=1.5'"),
        ("blue", False, "--traffic: not name=percent; allowed: name=percent pairs"),
        ("=50", False, "--traffic: not name=percent"),
        ("blue=50 blue=50", False, "--traffic: blue is given twice; allowed: each deployment once; got 'blue=50'"),
        ("b=100", False, "--traffic: invalid deployment name; allowed: 3-32 letters"),
        ("", False, "--traffic: no deployments given"),
        ("green=60", True, "--mirror-traffic: at most 50 percent can be mirrored (Azure's limit); allowed: an integer from 0 to 50; got 'green=60'"),
        ("green=10 red=10", True, "--mirror-traffic: traffic can be mirrored to one deployment only"),
    ],
)  # fmt: skip
def test_bad_traffic_option(text: str, mirror: bool, expected: str) -> None:
    with pytest.raises(SpecError) as raised:
        parse_traffic(text, mirror=mirror)
    assert raised.value.message.startswith(expected), raised.value.message


def test_every_bad_traffic_part_is_reported() -> None:
    with pytest.raises(SpecError) as raised:
        parse_traffic("blue=x green, red=7")
    assert [i.value for i in raised.value.issues] == ["blue=x", "green"]
