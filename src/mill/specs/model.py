"""Model asset YAML (yaml-reference §12): a named, versioned model in one of three formats."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mill.errors import SpecError, SpecIssue

from .fields import (
    OptionalText,
    TextMap,
    asset_name_and_version_problems,
    choice,
    versions_as_text,
)
from .problems import fail, from_validation_error, problem, to_issues
from .references import classify_path, strip_file_prefix
from .yamldoc import YamlDocument, load_yaml

__all__ = ["MODEL_TYPES", "ModelSpec", "load_model", "parse_model"]

ModelType = Literal["custom_model", "mlflow_model", "triton_model"]
MODEL_TYPES: tuple[str, ...] = ("custom_model", "mlflow_model", "triton_model")
_RUNS = re.compile(r"^runs:/([^/]+)(?:/(.*))?$")
PATH_FORMS = (
    "a local file or folder, azureml://jobs/<job>/outputs/<output>/paths/<path>, "
    "runs:/<run-id>/<path>, azureml://datastores/<name>/paths/<path>, a storage URI or https://"
)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: str
    version: OptionalText = None
    type: Annotated[ModelType, choice(MODEL_TYPES)] = "custom_model"
    path: str
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)
    stage: OptionalText = None  # Azure's free-text stage ("Development", "Production")

    _versions_as_text = model_validator(mode="before")(versions_as_text)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        problems = asset_name_and_version_problems("model", self.name, self.version)
        if not self.path.strip() or classify_path(self.path) in ("snapshot", "asset"):
            problems.append(
                problem("not a model path", path=("path",), value=self.path, allowed=PATH_FORMS)
            )
        if problems:
            fail(*problems)
        return self

    @property
    def is_local(self) -> bool:
        return classify_path(self.path) == "local" and not self.path.startswith("runs:/")

    def run_reference(self) -> tuple[str, str] | None:
        """``runs:/<run-id>/<path>`` -> (run id, path inside the run's artifacts)."""
        match = _RUNS.match(self.path.strip())
        return (match.group(1), (match.group(2) or "").strip("/")) if match else None


def parse_model(data: Mapping[str, Any], source: YamlDocument | None = None) -> ModelSpec:
    if not isinstance(data, Mapping):
        raise SpecError([SpecIssue("expected a mapping of model fields", value=data)])
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(to_issues(from_validation_error(exc, ModelSpec), source)) from None


def load_model(path: Path, overrides: Sequence[str] = ()) -> ModelSpec:
    """A model YAML file with ``--set`` overrides; a local ``path`` becomes absolute."""
    from .overrides import apply_overrides

    doc = load_yaml(path)
    data = apply_overrides(doc.data, overrides) if overrides else dict(doc.data)
    spec = parse_model(data, YamlDocument(data, doc.file, doc.base_dir, doc.lines))
    if spec.is_local:
        local = Path(strip_file_prefix(spec.path)).expanduser()
        spec.path = str((doc.base_dir / local).resolve())
    return spec
