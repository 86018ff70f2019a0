"""Turning pydantic's validation errors into problems a person can act on.

Validators raise :func:`fail` with one or more :class:`Problem` (our own wording, the bad
value, what is allowed); pydantic's built-in errors (missing field, wrong type, unknown
field) are reworded here. Each problem carries its field path from the model root; the
loader later adds the file and line.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from mill.errors import SpecIssue

from .yamldoc import FieldPath, YamlDocument

__all__ = [
    "Problem",
    "Problems",
    "dotted",
    "fail",
    "from_validation_error",
    "problem",
    "to_issues",
    "with_prefix",
]

_KIND = "mill"
_SIMPLE: dict[str, str] = {
    "string_type": "a string",
    "string_sub_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


@dataclass(frozen=True)
class Problem:
    """One issue, located by its field path; ``issue`` is set when already located elsewhere.

    ``issue`` holds problems found in another file (an environment or conda file that a job
    points at); they keep their own file, line and field.
    """

    message: str
    path: FieldPath = ()
    value: Any = None
    has_value: bool = False
    allowed: str | None = None
    issue: SpecIssue | None = None


class Problems(Exception):
    """Raised by helpers outside pydantic validators; carries every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


def problem(
    message: str = "", *, path: FieldPath = (), allowed: str | None = None, **kwargs: Any
) -> Problem:
    """A :class:`Problem`; passing ``value=`` (even ``None``) marks the bad value as known."""
    if "value" in kwargs:
        return Problem(message, path, kwargs["value"], True, allowed)
    return Problem(message, path, allowed=allowed)


def fail(*problems: Problem) -> NoReturn:
    """Raise from inside a validator; paths are relative to the value being validated."""
    summary = "; ".join(p.message or f"expected {p.allowed}" for p in problems)
    raise PydanticCustomError(_KIND, "{summary}", {"summary": summary, "problems": problems})


def with_prefix(prefix: FieldPath, problems: Iterable[Problem]) -> list[Problem]:
    """Problems found in a nested value, re-rooted under ``prefix``."""
    return [p if p.issue else replace(p, path=(*prefix, *p.path)) for p in problems]


def from_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Every error of ``exc`` (raised validating ``root``) as problems with full paths."""
    found: list[Problem] = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"])
        ctx = error.get("ctx") or {}
        if error["type"] == _KIND and "problems" in ctx:
            found.extend(with_prefix(loc, ctx["problems"]))
        else:
            found.append(_reword(error, loc, root))
    return _dedupe(found)


def _clean_loc(loc: tuple[int | str, ...]) -> FieldPath:
    # A dict key error ends in "[key]"; the key itself comes just before it.
    return tuple(part for part in loc if part != "[key]")


def _reword(error: ErrorDetails, loc: FieldPath, root: type[BaseModel]) -> Problem:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return Problem("required field is missing", loc)
    if kind == "extra_forbidden":
        return _unknown_field(loc, root)
    if kind in _SIMPLE:
        return Problem("", loc, value, True, _SIMPLE[kind])
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return Problem("", loc, value, True, "one of " + ", ".join(choices))
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<="}
        bound = next(iter(ctx.values()), "")
        what = "an integer" if isinstance(value, int) else "a number"
        return Problem("", loc, value, True, f"{what} {op.get(kind, '<')} {bound}")
    if kind == "string_too_short":
        return Problem("", loc, value, True, "a non-empty string")
    message = str(error.get("msg", "invalid value"))
    return Problem(message[:1].lower() + message[1:], loc, value, True)


def _unknown_field(loc: FieldPath, root: type[BaseModel]) -> Problem:
    model = _model_at(root, loc[:-1])
    name = str(loc[-1]) if loc else ""
    if model is None:
        return Problem("unknown field", loc)
    accepted = getattr(model, "accepted_keys", None) or tuple(
        f.alias or n for n, f in model.model_fields.items()
    )
    close = difflib.get_close_matches(name, accepted, n=1, cutoff=0.6)
    message = f"unknown field; did you mean {close[0]!r}?" if close else "unknown field"
    return Problem(message, loc, allowed=", ".join(accepted))


def _model_at(root: type[BaseModel], loc: FieldPath) -> type[BaseModel] | None:
    """The model class that validates the value at ``loc`` below ``root``."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[Any, ...]] = set()
    unique: list[Problem] = []
    for p in problems:
        key = (p.path, p.message, p.allowed, repr(p.value), p.issue)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def to_issues(
    problems: Iterable[Problem],
    doc: YamlDocument | None,
    overrides: Mapping[FieldPath, str] | None = None,
) -> list[SpecIssue]:
    """Locate each problem: in the ``--set`` override that produced its value, else in ``doc``."""
    issues: list[SpecIssue] = []
    for p in problems:
        if p.issue is not None:
            issues.append(p.issue)
            continue
        file, line = _locate(p.path, doc, overrides or {})
        issues.append(
            SpecIssue(p.message, dotted(p.path), file, line, p.value, p.has_value, p.allowed)
        )
    # Read top to bottom: the document's issues in line order, then those of other files.
    files: dict[str | None, int] = {doc.file: -1} if doc is not None else {}
    for rank, issue in enumerate(issues):
        files.setdefault(issue.file, rank)
    return sorted(issues, key=lambda i: (files[i.file], i.line is None, i.line or 0))


def dotted(path: FieldPath) -> str:
    """``("inputs", "lr", "type")`` -> ``inputs.lr.type``; list items as ``[0]``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(
    path: FieldPath, doc: YamlDocument | None, overrides: Mapping[FieldPath, str]
) -> tuple[str | None, int | None]:
    # The longest override that set this value or one of its parents.
    owners = [o for o in overrides if path[: len(o)] == o]
    if owners:
        return overrides[max(owners, key=len)], None
    # A value below mappings an override created (`--set inputs.new.mode=...` and the
    # missing `inputs.new.path`): the override explains it better than the file does.
    in_file = max((n for n in range(1, len(path) + 1) if doc and doc.has_line(path[:n])), default=0)
    closest = max(overrides, key=lambda o: _shared(o, path), default=None)
    if closest is not None and _shared(closest, path) > in_file:
        return overrides[closest], None
    if doc is None:
        return None, None
    return doc.file, doc.line_of(path)


def _shared(a: FieldPath, b: FieldPath) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count
