"""Job inputs and outputs (yaml-reference §5), normalised to one shape each.

An input is written as a bare literal (``C: 0.8``), a literal mapping (``{type: integer,
value: 3}``, ``default:`` also accepted) or a data mapping (``{type, path, mode}``); all
become a :class:`JobInput`. An output is a mapping or nothing at all (``model:``).
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator, model_validator

from .context import context_of
from .expressions import command_references
from .fields import OptionalText, choice, is_scalar
from .problems import Problem, Problems, fail, problem, with_prefix
from .references import classify_path

__all__ = [
    "DATA_INPUT_TYPES",
    "INPUT_MODES",
    "INPUT_TYPES",
    "LITERAL_INPUT_TYPES",
    "OUTPUT_MODES",
    "OUTPUT_TYPES",
    "JobInput",
    "JobOutput",
]

DataInputType = Literal[
    "uri_file", "uri_folder", "mltable", "mlflow_model", "custom_model", "triton_model"
]
LiteralInputType = Literal["string", "integer", "number", "boolean"]
InputType = Literal[DataInputType, LiteralInputType]
InputMode = Literal["ro_mount", "download", "direct", "eval_mount", "eval_download"]
OutputType = DataInputType
OutputMode = Literal["rw_mount", "upload", "direct"]

DATA_INPUT_TYPES: tuple[str, ...] = get_args(DataInputType)
LITERAL_INPUT_TYPES: tuple[str, ...] = get_args(LiteralInputType)
INPUT_TYPES: tuple[str, ...] = DATA_INPUT_TYPES + LITERAL_INPUT_TYPES
INPUT_MODES: tuple[str, ...] = get_args(InputMode)
OUTPUT_TYPES: tuple[str, ...] = get_args(OutputType)
OUTPUT_MODES: tuple[str, ...] = get_args(OutputMode)

_INPUT_FORMS = "a literal (text, number, true/false) or a mapping with type and path or value"
_DATA_PATH = "a local path, azureml://datastores/<name>/paths/<path>, an https:// URL or a URI"
_LITERAL_ALLOWED = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}
_LITERAL_KEYS = "type, value (or default), optional, description"
_DATA_KEYS = "type, path, mode, optional, description"
_BOOLEAN_TEXT = {"true": True, "false": False}


class JobInput(BaseModel):
    """One input of a job: a literal (``value``) or data at ``path`` made available by ``mode``.

    ``mode`` ``None`` means the default, ``ro_mount``.
    """

    model_config = ConfigDict(extra="forbid")
    accepted_keys: ClassVar[tuple[str, ...]] = (
        "type",
        "path",
        "value",
        "default",
        "mode",
        "optional",
        "description",
    )

    type: Annotated[InputType, choice(INPUT_TYPES)]
    path: str | None = None
    value: str | int | float | bool | None = None
    mode: Annotated[InputMode | None, choice(INPUT_MODES)] = None
    optional: bool = False
    description: OptionalText = None

    @property
    def is_literal(self) -> bool:
        return self.type in LITERAL_INPUT_TYPES

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if isinstance(data, JobInput):
            return data
        if is_scalar(data):
            return {"type": _literal_type(data), "value": data}
        if not isinstance(data, dict):
            fail(problem(value=data, allowed=_INPUT_FORMS))
        data = dict(data)
        if "default" in data:
            default = data.pop("default")
            if data.get("value") is None:
                data["value"] = default
        if data.get("type") is None:
            value = data.get("value")
            data["type"] = _literal_type(value) if is_scalar(value) else "uri_folder"
        return data

    @field_validator("value", mode="before")
    @classmethod
    def _scalar_value(cls, value: Any) -> Any:
        if value is None or is_scalar(value):
            return value
        fail(problem(value=value, allowed="text, a number or true/false"))

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> JobInput:
        problems = self._literal_problems() if self.is_literal else self._data_problems(info)
        if problems:
            fail(*problems)
        return self

    def _literal_problems(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.path is not None:
            problems.append(
                problem(
                    "a literal input takes value, not path",
                    path=("path",),
                    value=self.path,
                    allowed=_LITERAL_KEYS,
                )
            )
        if self.mode is not None:
            problems.append(
                problem(
                    "mode is only for data inputs",
                    path=("mode",),
                    value=self.mode,
                    allowed=_LITERAL_KEYS,
                )
            )
        allowed = _LITERAL_ALLOWED[self.type]
        if self.value is None and not self.optional:
            problems.append(problem("required field is missing", path=("value",), allowed=allowed))
        elif self.value is not None:
            converted = _convert_literal(self.type, self.value)
            if converted is None:
                problems.append(problem(path=("value",), value=self.value, allowed=allowed))
            else:
                self.value = converted
        return problems

    def _data_problems(self, info: ValidationInfo) -> list[Problem]:
        problems: list[Problem] = []
        if self.value is not None:
            problems.append(
                problem(
                    "a data input takes path, not value",
                    path=("value",),
                    value=self.value,
                    allowed=_DATA_KEYS,
                )
            )
        if self.path is None and not self.optional:
            problems.append(
                problem("required field is missing", path=("path",), allowed=_DATA_PATH)
            )
        elif self.path is not None and not self.path.strip():
            problems.append(
                problem("empty path", path=("path",), value=self.path, allowed=_DATA_PATH)
            )
        elif self.path is not None and classify_path(self.path) == "local":
            context = context_of(info)
            if context is not None:
                try:
                    self.path = context.existing(self.path)
                except Problems as exc:
                    problems.extend(with_prefix(("path",), exc.problems))
        return problems


class JobOutput(BaseModel):
    """One output of a job; ``path`` ``None`` means the job's default output location."""

    model_config = ConfigDict(extra="forbid")

    type: Annotated[OutputType, choice(OUTPUT_TYPES)] = "uri_folder"
    path: str | None = None
    mode: Annotated[OutputMode, choice(OUTPUT_MODES, {"mount": "rw_mount"})] = "rw_mount"
    name: OptionalText = None
    version: OptionalText = None
    description: OptionalText = None

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if data is None:  # `model:` with nothing after it: every default
            return {}
        if isinstance(data, JobOutput):
            return data
        if not isinstance(data, dict):
            fail(problem(value=data, allowed="a mapping with type, path and mode, or nothing"))
        return {k: v for k, v in data.items() if not (k in ("type", "mode") and v is None)}

    @model_validator(mode="after")
    def _check(self) -> JobOutput:
        problems: list[Problem] = []
        if self.path is not None and not self.path.strip():
            problems.append(problem("empty path", path=("path",), value=self.path))
        for ref in command_references(self.path or ""):
            if ref.kind != "name" or ref.key is not None:
                problems.append(
                    problem(
                        f"unknown expression {ref.text} in an output path",
                        path=("path",),
                        value=self.path,
                        allowed="${{name}} (the job name)",
                    )
                )
        if self.version is not None and self.name is None:
            problems.append(
                problem(
                    "version needs a name to register the output under",
                    path=("version",),
                    value=self.version,
                )
            )
        if problems:
            fail(*problems)
        return self


def _literal_type(value: Any) -> str:
    # bool before int: True is an int in Python.
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _convert_literal(kind: str, value: str | int | float | bool) -> str | int | float | bool | None:
    """``value`` as the Python type of ``kind``, or ``None`` when it is not one."""
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return _BOOLEAN_TEXT.get(value.strip().lower()) if isinstance(value, str) else None
    if isinstance(value, bool):
        return None
    if kind == "integer":
        if isinstance(value, int):
            return value
        return _parse(int, value) if isinstance(value, str) else None
    if isinstance(value, (int, float)):
        return value
    as_int = _parse(int, value)
    return as_int if as_int is not None else _parse(float, value)


def _parse(kind: type[int] | type[float], text: str) -> int | float | None:
    try:
        return kind(text.strip())
    except ValueError:
        return None
