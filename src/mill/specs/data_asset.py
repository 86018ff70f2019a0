"""Data asset YAML (yaml-reference §13): a named, versioned pointer to a file or a folder."""

from __future__ import annotations

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

__all__ = ["DATA_ASSET_TYPES", "DataAssetSpec", "load_data_asset", "parse_data_asset"]

DataAssetType = Literal["uri_file", "uri_folder", "mltable"]
DATA_ASSET_TYPES: tuple[str, ...] = ("uri_file", "uri_folder", "mltable")
_PATH_FORMS = (
    "a local path, azureml://datastores/<name>/paths/<path>, "
    "azureml://jobs/<job>/outputs/<output>[/paths/<path>], https://, wasbs://, abfss:// "
    "or s3:// URI"
)


class DataAssetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: str
    version: OptionalText = None
    type: Annotated[DataAssetType, choice(DATA_ASSET_TYPES)] = "uri_folder"
    path: str
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    properties: TextMap = Field(default_factory=dict)

    _versions_as_text = model_validator(mode="before")(versions_as_text)

    @model_validator(mode="after")
    def _check(self) -> DataAssetSpec:
        problems = asset_name_and_version_problems("data asset", self.name, self.version)
        kind = classify_path(self.path) if self.path.strip() else "empty"
        if kind in ("empty", "snapshot", "asset"):
            problems.append(
                problem(
                    "not a data path" if kind != "empty" else "empty path",
                    path=("path",),
                    value=self.path,
                    allowed=_PATH_FORMS,
                )
            )
        if problems:
            fail(*problems)
        return self

    @property
    def is_local(self) -> bool:
        return classify_path(self.path) == "local"


def parse_data_asset(data: Mapping[str, Any], source: YamlDocument | None = None) -> DataAssetSpec:
    """Validate a data asset given as a mapping; ``source`` locates problems."""
    if not isinstance(data, Mapping):
        raise SpecError([SpecIssue("expected a mapping of data asset fields", value=data)])
    try:
        return DataAssetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(to_issues(from_validation_error(exc, DataAssetSpec), source)) from None


def load_data_asset(path: Path, overrides: Sequence[str] = ()) -> DataAssetSpec:
    """A data asset YAML file with ``--set`` overrides; a local ``path`` becomes absolute."""
    from .overrides import apply_overrides

    doc = load_yaml(path)
    data = apply_overrides(doc.data, overrides) if overrides else dict(doc.data)
    spec = parse_data_asset(data, YamlDocument(data, doc.file, doc.base_dir, doc.lines))
    if spec.is_local:
        local = Path(strip_file_prefix(spec.path)).expanduser()
        spec.path = str((doc.base_dir / local).resolve())
    return spec
