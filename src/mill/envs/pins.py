"""Pins known not to install on CPython 3.11, caught before any build.

Mill does not rewrite a user's pins: it fails naming the pin and the nearest version that
installs (``data/python311_pins.json``, from curated-environments.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from mill.errors import SpecError, SpecIssue

from .requirements import (
    RequirementSyntaxError,
    normalize_name,
    requirement_clauses,
    requirement_name,
)

__all__ = ["BadPin", "check_pins", "find_bad_pins"]


_PROBLEM = "does not install on CPython {python}"


@dataclass(frozen=True)
class BadPin:
    """A requirement that will not work, with what to ask for instead."""

    requirement: str
    problem: str
    nearest: str


@dataclass(frozen=True)
class _Rule:
    name: str
    versions: tuple[str, ...]
    nearest: str
    problem: str
    unless_numpy_below_2: bool


@lru_cache(maxsize=1)
def _rules() -> tuple[_Rule, ...]:
    text = resources.files("mill.envs").joinpath("data/python311_pins.json").read_text("utf-8")
    return tuple(
        _Rule(
            name=normalize_name(r["name"]),
            versions=tuple(r["versions"]),
            nearest=r["nearest"],
            problem=r.get("problem", _PROBLEM),
            unless_numpy_below_2=bool(r.get("unless_numpy_below_2", False)),
        )
        for r in json.loads(text)["pins"]
    )


def _clauses(requirement: str) -> list[tuple[str, str]]:
    try:
        return requirement_clauses(requirement)
    except RequirementSyntaxError:
        return []


def _pinned_version(requirement: str) -> str | None:
    for op, version in _clauses(requirement):
        if op in ("==", "==="):
            return version.removesuffix(".*")
    return None


def _matches(version: str, prefixes: Sequence[str]) -> bool:
    return any(version == p or version.startswith(p + ".") for p in prefixes)


def _numpy_below_2(requirements: Sequence[str]) -> bool:
    for requirement in requirements:
        if requirement_name(requirement) != "numpy":
            continue
        for op, version in _clauses(requirement):
            head = version.split(".")
            major = int(head[0]) if head[0].isdigit() else 99
            if op in ("==", "===", "~=", "<=") and major < 2:
                return True
            if op == "<" and (major < 2 or all(p in ("2", "0") for p in head)):
                return True
    return False


def find_bad_pins(requirements: Sequence[str]) -> list[BadPin]:
    """The requirements that match a known bad pin, each with the nearest that installs."""
    bad: list[BadPin] = []
    rules = _rules()
    for requirement in requirements:
        name = requirement_name(requirement)
        version = _pinned_version(requirement)
        if name is None or version is None:
            continue
        for rule in rules:
            if rule.name != name or not _matches(version, rule.versions):
                continue
            if rule.unless_numpy_below_2 and _numpy_below_2(requirements):
                continue
            bad.append(BadPin(requirement, rule.problem, rule.nearest))
            break
    return bad


def check_pins(
    requirements: Sequence[str], origins: Mapping[str, str | None], python_version: str
) -> None:
    """Raise a :class:`SpecError` for every known bad pin; ``origins`` names each one's file."""
    bad = find_bad_pins(requirements)
    if not bad:
        return
    issues = [
        SpecIssue(
            f"{pin.requirement} {pin.problem.format(python=python_version)}; "
            f"nearest that installs: {pin.nearest}",
            file=origins.get(pin.requirement),
        )
        for pin in bad
    ]
    raise SpecError(issues, hint="change these pins; Mill does not rewrite them for you")
