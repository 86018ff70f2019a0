"""The transformations of an ``MLTable`` file, each a small typed model.

An item is a bare name (``- read_parquet``) or a one-key mapping (``- take: 5``,
``- read_delimited: {...}``); a scalar or list value fills the transformation's one
field (its ``shorthand``). :func:`parse_transformations` turns the list into models and
reports problems at the item's own line.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .fields import NonNegativeCount, OptionalText, choice
from .problems import Problem, Problems, fail, from_validation_error, problem
from .yamldoc import FieldPath

__all__ = [
    "COLUMN_TYPES",
    "ENCODINGS",
    "HEADERS",
    "MLTABLE_TRANSFORMATIONS",
    "READ_TRANSFORMATIONS",
    "ColumnConversion",
    "ColumnType",
    "ConvertColumnTypes",
    "DropColumns",
    "ExtractPartitionFormat",
    "Filter",
    "KeepColumns",
    "ReadDelimited",
    "ReadDeltaLake",
    "ReadJsonLines",
    "ReadParquet",
    "Skip",
    "Take",
    "TakeRandomSample",
    "Transformation",
    "parse_transformations",
]

HEADERS = ("all_files_same_headers", "from_first_file", "all_files_different_headers", "no_header")
# Azure's names (and the spellings its SDK accepts) -> Python codec names.
ENCODINGS = {
    "utf8": "utf-8-sig",
    "utf-8": "utf-8-sig",
    "utf8bom": "utf-8-sig",
    "utf-8 bom": "utf-8-sig",
    "iso88591": "iso-8859-1",
    "iso-8859-1": "iso-8859-1",
    "latin1": "latin-1",
    "latin-1": "latin-1",
    "ascii": "ascii",
    "utf16": "utf-16",
    "utf-16": "utf-16",
    "windows1252": "cp1252",
    "windows-1252": "cp1252",
}
COLUMN_TYPES = ("int", "float", "string", "boolean", "datetime", "stream_info")


def _strict_bool(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    fail(problem(value=value, allowed="true or false"))


def _encoding(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ENCODINGS:
        return value.strip().lower()
    fail(problem(value=value, allowed="one of utf8, ascii, latin1, iso88591, utf16, windows1252"))


def _names(value: Any) -> Any:
    """``columns: a`` or ``columns: [a, b]`` -> a non-empty list of names."""
    items = (
        [value] if isinstance(value, (str, int, float)) and not isinstance(value, bool) else value
    )
    if isinstance(items, list) and items and all(isinstance(i, (str, int, float)) for i in items):
        return [str(i) for i in items]
    fail(problem(value=value, allowed="a column name or a non-empty list of column names"))


Flag = Annotated[bool, BeforeValidator(_strict_bool)]
ColumnNames = Annotated[list[str], BeforeValidator(_names)]


class Transformation(BaseModel):
    """One transformation; ``shorthand`` names the field a scalar or list value fills."""

    model_config = ConfigDict(extra="forbid")
    name: ClassVar[str]
    shorthand: ClassVar[str | None] = None
    reads: ClassVar[bool] = False


class ReadDelimited(Transformation):
    name = "read_delimited"
    reads = True

    delimiter: str = ","
    encoding: Annotated[str, BeforeValidator(_encoding)] = "utf8"
    header: Annotated[str, choice(HEADERS)] = "all_files_same_headers"
    empty_as_string: Flag = False
    include_path_column: Flag = False
    support_multi_line: Flag = False
    infer_column_types: Flag = True

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]


class ReadParquet(Transformation):
    name = "read_parquet"
    reads = True

    include_path_column: Flag = False


class ReadJsonLines(Transformation):
    name = "read_json_lines"
    reads = True

    encoding: Annotated[str, BeforeValidator(_encoding)] = "utf8"
    invalid_lines: Annotated[str, choice(("error", "drop"))] = "error"
    include_path_column: Flag = False

    @property
    def codec(self) -> str:
        return ENCODINGS[self.encoding]


class ReadDeltaLake(Transformation):
    name = "read_delta_lake"
    reads = True

    timestamp_as_of: OptionalText = None
    version_as_of: int | None = None
    include_path_column: Flag = False


class Take(Transformation):
    name = "take"
    shorthand = "count"

    count: NonNegativeCount


class Skip(Transformation):
    name = "skip"
    shorthand = "count"

    count: NonNegativeCount


class TakeRandomSample(Transformation):
    name = "take_random_sample"

    probability: Annotated[float, Field(ge=0, le=1)]
    seed: int | None = None


class DropColumns(Transformation):
    name = "drop_columns"
    shorthand = "columns"

    columns: ColumnNames


class KeepColumns(Transformation):
    name = "keep_columns"
    shorthand = "columns"

    columns: ColumnNames


class ColumnType(BaseModel):
    """``float`` or ``{datetime: {formats: [...]}}`` / ``{boolean: {true_values: [...], ...}}``."""

    model_config = ConfigDict(extra="forbid")

    kind: str
    formats: list[str] = Field(default_factory=list)
    date_constant: OptionalText = None
    true_values: list[str] = Field(default_factory=list)
    false_values: list[str] = Field(default_factory=list)
    mismatch_as: str = "error"

    @model_validator(mode="before")
    @classmethod
    def _forms(cls, data: Any) -> Any:
        if isinstance(data, str) and data.strip().lower() in COLUMN_TYPES:
            return {"kind": data.strip().lower()}
        if isinstance(data, dict) and len(data) == 1:
            kind, options = next(iter(data.items()))
            if kind in ("datetime", "boolean") and isinstance(options, dict | None):
                return _column_type_options(str(kind), options or {})
        fail(
            problem(
                value=data,
                allowed="one of " + ", ".join(COLUMN_TYPES) + ", {datetime: {formats: [...]}} "
                "or {boolean: {true_values: [...], false_values: [...]}}",
            )
        )


def _column_type_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    known: tuple[str, ...] = ("formats", "date_constant")
    if kind == "boolean":
        known = ("true_values", "false_values", "mismatch_as")
    problems = [
        problem("unknown option", path=(kind, str(key)), allowed=", ".join(known))
        for key in options
        if key not in known
    ]
    body: dict[str, Any] = {"kind": kind}
    for key in known:
        value = options.get(key)
        if value is None:
            continue
        if key in ("formats", "true_values", "false_values"):
            value = [value] if isinstance(value, str) else value
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                problems.append(
                    problem(path=(kind, key), value=value, allowed="a non-empty list of strings")
                )
                continue
        elif key == "mismatch_as" and value not in ("error", "true", "false"):
            problems.append(
                problem(path=(kind, key), value=value, allowed="one of error, true, false")
            )
            continue
        body[key] = value
    if kind == "datetime" and "formats" not in body and not problems:
        problems.append(
            problem(
                "a datetime conversion needs its formats",
                path=(kind,),
                allowed="formats: ['%Y-%m-%d', ...]",
            )
        )
    if problems:
        fail(*problems)
    return body


class ColumnConversion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    columns: ColumnNames
    column_type: ColumnType


class ConvertColumnTypes(Transformation):
    name = "convert_column_types"
    shorthand = "conversions"

    conversions: list[ColumnConversion]


class ExtractPartitionFormat(Transformation):
    name = "extract_columns_from_partition_format"
    shorthand = "partition_format"

    partition_format: str = Field(min_length=1)


class Filter(Transformation):
    name = "filter"
    shorthand = "expression"

    expression: str


_STEPS: dict[str, type[Transformation]] = {
    step.name: step
    for step in (
        ReadDelimited,
        ReadParquet,
        ReadJsonLines,
        ReadDeltaLake,
        Take,
        TakeRandomSample,
        Skip,
        DropColumns,
        KeepColumns,
        ConvertColumnTypes,
        ExtractPartitionFormat,
        Filter,
    )
}
MLTABLE_TRANSFORMATIONS: tuple[str, ...] = tuple(_STEPS)
READ_TRANSFORMATIONS: tuple[str, ...] = tuple(n for n, s in _STEPS.items() if s.reads)


def _transformation(item: Any) -> Transformation:
    """One list item: ``- read_parquet``, ``- take: 5`` or ``- read_delimited: {...}``."""
    allowed = "one of " + ", ".join(MLTABLE_TRANSFORMATIONS)
    where: FieldPath = ()
    if isinstance(item, str):
        name, args = item, None
    elif isinstance(item, dict) and len(item) == 1:
        name, args = next(iter(item.items()))
        where = (name,)
    else:
        raise Problems([problem("expected a transformation name or a one-key mapping", value=item)])
    step = _STEPS.get(str(name).strip())
    if step is None:
        raise Problems([problem("unknown transformation", path=where, value=name, allowed=allowed)])
    if args is None:
        body: Any = {}
    elif isinstance(args, dict) and step is ConvertColumnTypes:
        body = {"conversions": [args]}  # one conversion given without its list
    elif isinstance(args, dict):
        body = args
    elif step.shorthand is not None:
        body = {step.shorthand: args}
    else:
        raise Problems([problem(path=where, value=args, allowed=f"options of {name} (a mapping)")])
    try:
        return step.model_validate(body)
    except ValidationError as exc:
        found = from_validation_error(exc, step)
    if step.shorthand is not None and (step is ConvertColumnTypes or not isinstance(args, dict)):
        # The value was given bare (`take: x`): point at it, not at our field name.
        found = [_strip(p, step.shorthand) for p in found]
    if args is None and step.shorthand is not None:
        found = [problem(f"{name} needs a value", path=(), allowed=f"{name}: <value>")]
    raise Problems(
        [Problem(p.message, (*where, *p.path), p.value, p.has_value, p.allowed) for p in found]
    )


def _strip(found: Problem, field: str) -> Problem:
    path = found.path[1:] if found.path[:1] == (field,) else found.path
    return Problem(found.message, path, found.value, found.has_value, found.allowed)


def parse_transformations(value: Any) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        fail(problem(value=value, allowed="a list of transformations"))
    steps: list[Transformation] = []
    problems: list[Problem] = []
    for index, item in enumerate(value):
        try:
            steps.append(_transformation(item))
        except Problems as exc:
            problems.extend(
                Problem(p.message, (index, *p.path), p.value, p.has_value, p.allowed)
                for p in exc.problems
            )
    if problems:
        fail(*problems)
    return steps
