"""``--set path.to.field=value`` overrides, applied to the parsed YAML before validation."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from mill.errors import SpecError, SpecIssue

from .yamldoc import FieldPath, parse_yaml_value

__all__ = ["apply_overrides", "apply_overrides_tracked"]

_FORM = "path.to.field=value"


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``path.to.field=value`` override applied in order.

    The value is read as a YAML scalar or flow collection (``True`` is a boolean, ``0.1`` a
    number, ``{a: 1}`` a mapping); plain text stays exactly as written. Missing mappings
    along the path are created.
    """
    return apply_overrides_tracked(data, overrides)[0]


def apply_overrides_tracked(
    data: Mapping[str, Any], overrides: Sequence[str]
) -> tuple[dict[str, Any], dict[FieldPath, str]]:
    """Like :func:`apply_overrides`; also maps each overridden path to ``--set <override>``."""
    result: dict[str, Any] = copy.deepcopy(dict(data))
    origins: dict[FieldPath, str] = {}
    for override in overrides:
        label = f"--set {override}"
        path, value = _parse(override, label)
        _assign(result, path, value, label)
        origins = {p: o for p, o in origins.items() if p[: len(path)] != path}
        origins[path] = label
    return result, origins


def _parse(override: str, label: str) -> tuple[tuple[str, ...], Any]:
    if "=" not in override:
        raise SpecError([SpecIssue(f"expected {_FORM}", file=label)])
    path_text, raw = override.split("=", 1)
    path = tuple(part.strip() for part in path_text.strip().split("."))
    if not path_text.strip() or any(not part for part in path):
        raise SpecError(
            [
                SpecIssue(
                    "empty field name in the path",
                    file=label,
                    value=path_text,
                    has_value=True,
                    allowed=_FORM,
                )
            ]
        )
    return path, _value(raw)


def _value(raw: str) -> Any:
    if not raw.strip():
        return ""
    try:
        value = parse_yaml_value(raw)
    except yaml.YAMLError:
        return raw.strip()
    if isinstance(value, str) and not raw.strip().startswith(("'", '"')):
        # Plain text stays as typed: YAML would drop a "# ..." tail or fold whitespace.
        return raw.strip()
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return raw.strip()


def _assign(data: dict[str, Any], path: tuple[str, ...], value: Any, label: str) -> None:
    node = data
    for depth, key in enumerate(path[:-1]):
        child = node.get(key)
        if child is None:
            child = node[key] = {}
        elif not isinstance(child, dict):
            walked = ".".join(path[: depth + 1])
            kind = "a list" if isinstance(child, list) else "a single value"
            raise SpecError(
                [
                    SpecIssue(
                        f"cannot set a field inside {walked!r}, which is {kind}",
                        field=".".join(path),
                        file=label,
                        value=child,
                        has_value=True,
                        allowed=f"a path through mappings only ({_FORM})",
                    )
                ]
            )
        node = child
    node[path[-1]] = value
