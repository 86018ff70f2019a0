"""Online deployment YAML (yaml-reference §16.2): one way an endpoint serves requests.

A deployment serves with a scoring script (``code_configuration``) in an environment, a
model without code (MLflow, Triton), or both. Relative local paths (model, code, conda
file, build context) start at the YAML file's folder and must exist; without a folder (a
JSON body sent to the server) they are left exactly as given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mill.errors import SpecError, SpecIssue

from .context import SpecContext, context_of
from .environment import ENVIRONMENT_FORMS, check_environment
from .fields import (
    Count,
    OptionalText,
    TextMap,
    asset_name_and_version_problems,
    choice,
    empty_if_null,
    versions_as_text,
)
from .model import MODEL_TYPES, PATH_FORMS, ModelType
from .online_settings import (
    DataCollector,
    DeploymentName,
    OnlineType,
    OnOff,
    ProbeSettings,
    RequestSettings,
    ScaleSettings,
    online_name,
    online_type,
)
from .overrides import apply_overrides_tracked
from .problems import (
    Problem,
    Problems,
    fail,
    from_validation_error,
    problem,
    to_issues,
    with_prefix,
)
from .references import classify_path, looks_like_placeholder, parse_asset_reference
from .yamldoc import FieldPath, YamlDocument, load_yaml

__all__ = [
    "CodeConfiguration",
    "DeploymentModel",
    "OnlineDeploymentSpec",
    "load_online_deployment",
    "parse_online_deployment",
    "validate_online_spec",
]

_MODEL_FORMS = (
    "azureml:<name>:<version>, azureml:<name>@<label>, "
    "azureml://registries/<registry>/models/<name>/versions/<version> (or /labels/<label>), "
    "or an inline mapping {path, type, name, version}"
)
_Spec = TypeVar("_Spec", bound=BaseModel)


class DeploymentModel(BaseModel):
    """A model written inline in a deployment; ``raw_path`` is ``path`` as written."""

    model_config = ConfigDict(extra="forbid")

    name: OptionalText = None
    version: OptionalText = None
    type: Annotated[ModelType, choice(MODEL_TYPES)] = "custom_model"
    path: str
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)
    _raw_path: str | None = PrivateAttr(default=None)

    _versions_as_text = model_validator(mode="before")(versions_as_text)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> DeploymentModel:
        found: list[Problem] = []
        if self.name is not None:
            found += asset_name_and_version_problems("model", self.name, self.version)
        kind = classify_path(self.path) if self.path.strip() else "empty"
        if kind in ("empty", "snapshot", "asset"):
            found.append(
                problem("not a model path", path=("path",), value=self.path, allowed=PATH_FORMS)
            )
        context = context_of(info)
        if not found and context is not None and self.is_local:
            try:
                resolved = context.existing(self.path)
                # An instance passed on (the `model` union) is checked again: keep the first.
                if self._raw_path is None:
                    self._raw_path = self.path
                self.path = resolved
            except Problems as exc:
                found += with_prefix(("path",), exc.problems)
        if found:
            fail(*found)
        return self

    @property
    def is_local(self) -> bool:
        return classify_path(self.path) == "local" and not self.path.startswith("runs:/")

    @property
    def raw_path(self) -> str:
        return self._raw_path if self._raw_path is not None else self.path


class CodeConfiguration(BaseModel):
    """The scoring script (``init()``/``run()``, §22.1) and the folder it lives in."""

    model_config = ConfigDict(extra="forbid")

    code: str
    scoring_script: str
    _raw_code: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> CodeConfiguration:
        found = [
            problem("empty", path=(name,), value=getattr(self, name), allowed=allowed)
            for name, allowed in (
                ("code", "the folder holding the scoring script"),
                ("scoring_script", "the script's path inside code, e.g. score.py"),
            )
            if not getattr(self, name).strip()
        ]
        context = context_of(info)
        if not found and context is not None and classify_path(self.code) == "local":
            try:
                folder = context.existing(self.code, want="folder")
                if self._raw_code is None:
                    self._raw_code = self.code
                self.code = folder
            except Problems as exc:
                found += with_prefix(("code",), exc.problems)
            else:
                script = Path(folder) / self.scoring_script
                if not script.is_file():
                    message = f"no such file in the code folder: {script}"
                    if looks_like_placeholder(self.scoring_script):
                        message = "a placeholder, not a script: replace it (for example with --set)"
                    found.append(
                        problem(
                            message,
                            path=("scoring_script",),
                            value=self.scoring_script,
                            allowed="a Python file inside code",
                        )
                    )
        if found:
            fail(*found)
        return self

    @property
    def raw_code(self) -> str:
        return self._raw_code if self._raw_code is not None else self.code


class OnlineDeploymentSpec(BaseModel):
    """One deployment of an online endpoint; see :meth:`deployment_kind` for how it serves."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: DeploymentName
    endpoint_name: Annotated[str | None, AfterValidator(online_name("endpoint name"))] = None
    type: OnlineType = "managed"
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)
    model: str | DeploymentModel | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: TextMap = Field(default_factory=dict)
    instance_type: OptionalText = None
    instance_count: Count = 1
    request_settings: Annotated[RequestSettings, BeforeValidator(empty_if_null)] = Field(
        default_factory=RequestSettings
    )
    liveness_probe: Annotated[ProbeSettings, BeforeValidator(empty_if_null)] = Field(
        default_factory=ProbeSettings
    )
    readiness_probe: Annotated[ProbeSettings, BeforeValidator(empty_if_null)] = Field(
        default_factory=ProbeSettings
    )
    scale_settings: Annotated[ScaleSettings, BeforeValidator(empty_if_null)] = Field(
        default_factory=ScaleSettings
    )
    resources: dict[str, Any] | None = None  # Kubernetes requests/limits, kept as written
    data_collector: DataCollector | None = None
    app_insights_enabled: bool | None = None
    egress_public_network_access: OnOff = None
    model_mount_path: OptionalText = None

    @model_validator(mode="before")
    @classmethod
    def _type(cls, data: Any) -> Any:
        return online_type("kubernetesonlinedeployment", data, compute_means_k8s=False)

    @field_validator("model", mode="before")
    @classmethod
    def _model(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or isinstance(value, DeploymentModel):
            return value
        if isinstance(value, Mapping):
            try:
                return DeploymentModel.model_validate(value, context=info.context)
            except ValidationError as exc:
                fail(*from_validation_error(exc, DeploymentModel))
        if not isinstance(value, str):
            fail(problem("not a model reference", value=value, allowed=_MODEL_FORMS))
        ref = parse_asset_reference(value)
        if ref is None or (ref.registry is not None and ref.kind != "models"):
            message = "not a model reference"
            if looks_like_placeholder(value):
                message = (
                    "a placeholder, not a model reference: replace it (for example with --set)"
                )
            fail(problem(message, value=value, allowed=_MODEL_FORMS))
        if ref.version is None and ref.label is None:
            fail(
                problem(
                    "a model reference needs a version or a label",
                    value=value,
                    allowed=f"{value.strip()}:<version> or {value.strip()}@latest",
                )
            )
        return value.strip()

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: Any, info: ValidationInfo) -> Any:
        return check_environment(value, info)

    @model_validator(mode="after")
    def _check(self) -> OnlineDeploymentSpec:
        if self.model is None and self.code_configuration is None:
            fail(
                problem(
                    "a deployment needs a model, a code_configuration (scoring script) or both",
                    path=("model",),
                    allowed=f"model: {_MODEL_FORMS}; code_configuration: {{code, scoring_script}}",
                )
            )
        inline_type = self.model.type if isinstance(self.model, DeploymentModel) else None
        # A registered model's type is known only to the server, which checks it there.
        needs_environment = self.model is None or inline_type not in (None, "mlflow_model")
        if self.code_configuration is not None and self.environment is None and needs_environment:
            fail(
                problem(
                    "a deployment with code_configuration needs an environment to run its "
                    "scoring script (only an mlflow_model brings its own)",
                    path=("environment",),
                    allowed=ENVIRONMENT_FORMS,
                )
            )
        return self

    def deployment_kind(self) -> Literal["code", "mlflow", "triton", "model"]:
        """``code`` (a scoring script), ``mlflow`` or ``triton`` (no code), else ``model``.

        ``model``: a custom or registered model without code; the service decides whether
        it can serve it (an ONNX model, or a registered MLflow/Triton model).
        """
        if self.code_configuration is not None:
            return "code"
        if isinstance(self.model, DeploymentModel):
            if self.model.type == "mlflow_model":
                return "mlflow"
            if self.model.type == "triton_model":
                return "triton"
        return "model"

    @property
    def notes(self) -> list[str]:
        """What this deployment asks for that Mill accepts but does not act on."""
        ignored = {
            "egress_public_network_access": "replicas reach whatever the server's host reaches",
            "app_insights_enabled": "there is no Application Insights; see the deployment's logs",
            "resources": "Kubernetes requests and limits do not apply to local replicas",
        }
        return [
            f"{name} is accepted and ignored: {why}"
            for name, why in ignored.items()
            if getattr(self, name) is not None
        ]


def load_online_deployment(path: Path, overrides: Sequence[str] = ()) -> OnlineDeploymentSpec:
    """An online deployment YAML file with ``--set`` overrides; local paths made absolute.

    Model, code, conda file and build paths start at the file's folder and must exist.
    """
    doc = load_yaml(path)
    data, origins = apply_overrides_tracked(doc.data, overrides)
    return validate_online_spec(OnlineDeploymentSpec, data, doc, doc.base_dir, origins)


def parse_online_deployment(
    data: Mapping[str, Any], source: YamlDocument | None = None, *, base_dir: Path | None = None
) -> OnlineDeploymentSpec:
    """Validate an online deployment given as a mapping (a parsed file or a JSON body).

    Without ``base_dir`` local paths are left exactly as given (the server's case).
    """
    return validate_online_spec(OnlineDeploymentSpec, data, source, base_dir, {})


def validate_online_spec(
    model: type[_Spec],
    data: Any,
    source: YamlDocument | None,
    base_dir: Path | None,
    overrides: Mapping[FieldPath, str],
) -> _Spec:
    """Validate ``data`` as ``model``; every problem becomes a located :class:`SpecIssue`."""
    if not isinstance(data, Mapping):
        shown = source.file if source is not None else None
        what = "deployment" if model is OnlineDeploymentSpec else "endpoint"
        issue = SpecIssue(
            f"expected a mapping of {what} fields", file=shown, value=data, has_value=True
        )
        raise SpecError([issue])
    context = SpecContext(
        base_dir=Path(os.path.abspath(base_dir)) if base_dir else None,
        shown_dir=os.path.dirname(source.file) if source is not None else None,
    )
    try:
        return model.model_validate(dict(data), context=context.as_context())
    except ValidationError as exc:
        problems = from_validation_error(exc, model)
        raise SpecError(to_issues(problems, source, overrides)) from None
