"""The ``MLTable`` file (yaml-reference §13): where a table's files are and how to read them.

A folder holding a file literally named ``MLTable`` is a table: ``paths`` names its files
(``file``, ``folder`` or a ``pattern`` glob, relative to that folder) and
``transformations`` says how to turn them into rows, in order. Each transformation is a
bare name (``- read_parquet``) or a one-key mapping (``- take: 5``). As in Azure ML, at
most one ``read_*`` transformation is allowed and it must come first; a table without one
is a list of files (usable as a folder), not something that loads into a DataFrame.

This module only parses and validates the text; :mod:`mill.data` finds the files and
reads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from mill.errors import SpecError, SpecIssue

from .fields import OptionalText, choice
from .mltable_steps import (
    MLTABLE_TRANSFORMATIONS,
    READ_TRANSFORMATIONS,
    Transformation,
    parse_transformations,
)
from .problems import dotted, fail, from_validation_error, problem, to_issues

# The text of a remote MLTable (fetched with fsspec) has no local path for load_yaml;
# _parse is the same line-recording parser, used here until yamldoc exports it.
from .yamldoc import FieldPath, YamlDocument, _parse, load_yaml

__all__ = [
    "MLTABLE_FILE",
    "MLTABLE_TRANSFORMATIONS",
    "READ_TRANSFORMATIONS",
    "MLTableSpec",
    "PathEntry",
    "load_mltable_spec",
    "parse_mltable_text",
]

MLTABLE_FILE = "MLTable"
_PATH_KINDS = ("file", "folder", "pattern")
Transformations = Annotated[list[Transformation], BeforeValidator(parse_transformations)]


class PathEntry(BaseModel):
    """One ``paths`` item: exactly one of ``file``, ``folder`` or ``pattern``."""

    model_config = ConfigDict(extra="forbid")

    file: OptionalText = None
    folder: OptionalText = None
    pattern: OptionalText = None

    @model_validator(mode="after")
    def _one(self) -> PathEntry:
        given = [k for k in _PATH_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            fail(
                problem(
                    f"a path needs exactly one key, found {len(given)}",
                    allowed="{file: ...}, {folder: ...} or {pattern: ...}",
                )
            )
        if not self.value.strip():
            fail(problem("empty path", path=(self.kind,), value=self.value, allowed="a path"))
        return self

    @property
    def kind(self) -> str:
        return next(k for k in _PATH_KINDS if getattr(self, k) is not None)

    @property
    def value(self) -> str:
        return str(getattr(self, self.kind))


class MLTableSpec(BaseModel):
    """A parsed ``MLTable`` file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    type: Annotated[Literal["mltable"], choice(("mltable",))] = "mltable"
    paths: Annotated[list[PathEntry], Field(min_length=1)]
    transformations: Annotated[list[Transformation], BeforeValidator(parse_transformations)] = (
        Field(default_factory=list)
    )
    traits: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    _source: YamlDocument | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _read_first(self) -> MLTableSpec:
        problems = [
            problem(
                "the read transformation must be the first one (and there can be only one)",
                path=("transformations", index, step.name),
                allowed="one of " + ", ".join(READ_TRANSFORMATIONS) + " as the first item",
            )
            for index, step in enumerate(self.transformations)
            if step.reads and index > 0
        ]
        if problems:
            fail(*problems)
        return self

    @property
    def file(self) -> str:
        """How messages name the MLTable file."""
        return self._source.file if self._source is not None else MLTABLE_FILE

    def issue(self, message: str, field_path: FieldPath, **kwargs: Any) -> SpecIssue:
        """A problem found later (a missing file, bad data) located at its line in the file."""
        if "value" in kwargs:
            kwargs["has_value"] = True
        line = self._source.line_of(field_path) if self._source is not None else None
        return SpecIssue(message, dotted(field_path), self.file, line, **kwargs)

    @property
    def read(self) -> Transformation | None:
        """The read transformation, or ``None`` when the table is only a list of files."""
        first = self.transformations[0] if self.transformations else None
        return first if first is not None and first.reads else None


def parse_mltable_text(text: str, file: str = MLTABLE_FILE) -> MLTableSpec:
    """Validate the text of an ``MLTable`` file; ``file`` is how messages name it."""
    data, lines = _parse(text, file)
    doc = YamlDocument(data=data, file=file, base_dir=Path("."), lines=lines)
    return _validate(doc)


def load_mltable_spec(path: Path) -> MLTableSpec:
    """Read and validate the local ``MLTable`` file at ``path`` (the file or its folder).

    Raises :class:`~mill.errors.SpecError` naming the file, line, field, bad value and
    what is allowed.
    """
    path = Path(path)
    if path.is_dir():
        path = path / MLTABLE_FILE
    return _validate(load_yaml(path))


def _validate(doc: YamlDocument) -> MLTableSpec:
    if doc.data is None:
        raise SpecError([SpecIssue("the file is empty; expected paths:", file=doc.file)])
    if not isinstance(doc.data, dict):
        raise SpecError(
            [
                SpecIssue(
                    "expected a mapping with paths:",
                    file=doc.file,
                    line=1,
                    value=doc.data,
                    has_value=True,
                )
            ]
        )
    try:
        spec = MLTableSpec.model_validate(doc.data)
    except ValidationError as exc:
        raise SpecError(to_issues(from_validation_error(exc, MLTableSpec), doc)) from None
    spec._source = doc
    return spec
