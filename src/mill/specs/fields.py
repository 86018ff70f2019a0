"""Field types shared by the spec models, each with an error message a person understands."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from .problems import Problem, fail, problem

__all__ = [
    "Count",
    "NonNegativeCount",
    "OptionalText",
    "Seconds",
    "TextMap",
    "asset_name_and_version_problems",
    "choice",
    "empty_if_null",
    "is_scalar",
    "name_like",
    "scalar_text",
    "versions_as_text",
]


def is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def scalar_text(value: Any) -> str:
    """A YAML scalar as text: ``1`` -> ``"1"``, ``True`` -> ``"True"``, null -> ``""``."""
    if value is None:
        return ""
    if is_scalar(value):
        return str(value)
    fail(problem(value=value, allowed="a string"))


def _text_or_none(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    fail(problem(value=value, allowed="a string"))


def _text_map(value: Any) -> Any:
    if value is None:
        return {}
    if not isinstance(value, dict):
        fail(problem(value=value, allowed="a mapping of names to text"))
    return {
        str(key) if is_scalar(key) else key: scalar_text(item)
        if item is None or is_scalar(item)
        else item
        for key, item in value.items()
    }


def empty_if_null(value: Any) -> Any:
    """``inputs:`` with nothing under it means no inputs."""
    return {} if value is None else value


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool):
        fail(problem(value=value, allowed="an integer"))
    return value


def choice(options: tuple[str, ...], aliases: dict[str, str] | None = None) -> BeforeValidator:
    """Accept one of ``options`` (case-insensitive, like Azure ML), or an alias of one."""
    known = {o.lower(): o for o in options}
    known.update({k.lower(): v for k, v in (aliases or {}).items()})

    def check(value: Any) -> Any:
        if value is None:
            return value
        if isinstance(value, str) and value.strip().lower() in known:
            return known[value.strip().lower()]
        fail(problem(value=value, allowed="one of " + ", ".join(options)))

    return BeforeValidator(check)


def name_like(pattern: str, what: str, allowed: str) -> Callable[[Any], Any]:
    """A validator for identifiers (input names, job names)."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and compiled.fullmatch(value)):
            return value
        fail(problem(f"not a valid {what}", value=value, allowed=allowed))

    return check


OptionalText = Annotated[str | None, BeforeValidator(_text_or_none)]
TextMap = Annotated[dict[str, str], BeforeValidator(_text_map)]
Count = Annotated[int, BeforeValidator(_whole_number), Field(ge=1)]
NonNegativeCount = Annotated[int, BeforeValidator(_whole_number), Field(ge=0)]
Seconds = Annotated[int, BeforeValidator(_whole_number), Field(gt=0)]


_ASSET_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}$")
_ASSET_VERSION = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def versions_as_text(data: Any) -> Any:
    """``version: 3`` in YAML is a number; asset versions are text."""
    if isinstance(data, Mapping) and isinstance(data.get("version"), (int, float)):
        return {**data, "version": str(data["version"])}
    return data


def asset_name_and_version_problems(what: str, name: str, version: str | None) -> list[Problem]:
    """The naming rules Azure ML applies to data and model assets."""
    found: list[Problem] = []
    if not _ASSET_NAME.match(name):
        found.append(
            problem(
                f"invalid {what} name",
                path=("name",),
                value=name,
                allowed="letters, digits, '_', '-' and '.', starting with a letter, "
                "digit or '_', at most 255",
            )
        )
    if version is not None and not _ASSET_VERSION.match(version):
        found.append(
            problem(
                "invalid version",
                path=("version",),
                value=version,
                allowed="1-64 letters, digits, '.', '-' or '_' (usually 1, 2, 3...)",
            )
        )
    return found
