"""Data asset YAML (yaml-reference §13): a named, versioned pointer to a file or a folder."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mill.errors import SpecError, SpecIssue

from .fields import OptionalText, TextMap, choice
from .problems import Problem, fail, from_validation_error, problem, to_issues
from .references import classify_path, strip_file_prefix
from .yamldoc import YamlDocument, load_yaml

__all__ = ["DATA_ASSET_TYPES", "DataAssetSpec", "load_data_asset", "parse_data_asset"]

DataAssetType = Literal["uri_file", "uri_folder", "mltable"]
DATA_ASSET_TYPES: tuple[str, ...] = ("uri_file", "uri_folder", "mltable")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
_VERSION = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
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

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_versions(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("version"), (int, float)):
            return {**data, "version": str(data["version"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> DataAssetSpec:
        problems: list[Problem] = []
        if not _NAME.match(self.name):
            problems.append(
                problem(
                    "invalid data asset name",
                    path=("name",),
                    value=self.name,
                    allowed="letters, digits, '_', '-' and '.', starting with a letter, "
                    "digit or '_', at most 255",
                )
            )
        if self.version is not None and not _VERSION.match(self.version):
            problems.append(
                problem(
                    "invalid version",
                    path=("version",),
                    value=self.version,
                    allowed="1-64 letters, digits, '.', '-' or '_' (usually 1, 2, 3...)",
                )
            )
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
