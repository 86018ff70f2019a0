"""The cache key of an environment: a content hash of its canonical form.

The canonical form holds only what changes the built virtualenv: kind, Python version,
the sorted and normalised requirements, pip options (in order: index order matters), the
build context digest and the platform. Names, descriptions, tags, conda ``name:`` and
``channels:``, dependency order, comments and whitespace do not reach it.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Sequence
from typing import Any

from mill.hashing import content_hash

from .definition import ResolvedEnvironment
from .requirements import RequirementSyntaxError, canonical_requirement, requirement_name

__all__ = ["canonical_form", "environment_key", "explain_difference", "platform_tag"]

# Bump when the canonical form changes meaning, so old cache entries stop matching.
FORMAT = 1


def platform_tag(python_version: str) -> str:
    """``linux-x86_64-cpython-3.11``: where a virtualenv built here can run."""
    return f"{sysconfig.get_platform()}-{sys.implementation.name}-{_major_minor(python_version)}"


def _major_minor(version: str) -> str:
    return ".".join(version.strip().split(".")[:2])


def _normalize(requirement: str) -> str:
    try:
        return canonical_requirement(requirement)
    except RequirementSyntaxError:
        return "".join(requirement.split())


def canonical_form(resolved: ResolvedEnvironment, platform: str | None = None) -> dict[str, Any]:
    """The data the key hashes (also stored beside each built environment)."""
    form: dict[str, Any] = {
        "format": FORMAT,
        "kind": resolved.kind,
        "python": _major_minor(resolved.python_version),
        "requirements": sorted({_normalize(r) for r in resolved.requirements}),
        "pip_options": [o.strip() for o in resolved.pip_options],
        "context_digest": resolved.context_digest,
        "platform": platform or platform_tag(resolved.interpreter_version),
    }
    if resolved.kind == "user_managed":
        form["python_path"] = resolved.python_path
    return form


def environment_key(resolved: ResolvedEnvironment, platform: str | None = None) -> str:
    """sha256 hex digest of :func:`canonical_form`."""
    return content_hash(canonical_form(resolved, platform))


def _by_name(requirements: Sequence[str]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for requirement in requirements:
        result.setdefault(requirement_name(requirement) or requirement, []).append(requirement)
    return result


def _requirement_changes(new: Sequence[str], old: Sequence[str]) -> tuple[list[str], ...]:
    new_by, old_by = _by_name(new), _by_name(old)
    added = [r for n in sorted(new_by.keys() - old_by.keys()) for r in new_by[n]]
    removed = [r for n in sorted(old_by.keys() - new_by.keys()) for r in old_by[n]]
    changed = [
        f"{', '.join(old_by[n])} → {', '.join(new_by[n])}"
        for n in sorted(new_by.keys() & old_by.keys())
        if sorted(new_by[n]) != sorted(old_by[n])
    ]
    return added, removed, changed


_SCALARS = ("format", "kind", "python", "platform", "pip_options", "context_digest", "python_path")


def _distance(new: dict[str, Any], old: dict[str, Any]) -> int:
    fields = sum(1 for f in _SCALARS if new.get(f) != old.get(f))
    added, removed, changed = _requirement_changes(
        new.get("requirements", []), old.get("requirements", [])
    )
    return fields + len(added) + len(removed) + len(changed)


def explain_difference(new_canonical: dict[str, Any], cached: list[dict[str, Any]]) -> str:
    """Why ``new_canonical`` is not in the cache: how it differs from the nearest entry."""
    if not cached:
        return "no environment was built before"
    nearest = min(cached, key=lambda old: _distance(new_canonical, old))
    new, old = new_canonical, nearest
    parts: list[str] = []
    if new.get("format") != old.get("format"):
        parts.append("Mill's environment format changed")
    if new.get("kind") != old.get("kind"):
        parts.append(f"kind {new.get('kind')} vs {old.get('kind')}")
    if new.get("python") != old.get("python"):
        parts.append(f"python {new.get('python')} vs {old.get('python')}")
    if new.get("platform") != old.get("platform"):
        parts.append(f"platform {new.get('platform')} vs {old.get('platform')}")
    if new.get("python_path") != old.get("python_path"):
        parts.append(f"interpreter {new.get('python_path')} vs {old.get('python_path')}")
    added, removed, changed = _requirement_changes(
        new.get("requirements", []), old.get("requirements", [])
    )
    if added:
        parts.append(f"added: {', '.join(added)}")
    if removed:
        parts.append(f"removed: {', '.join(removed)}")
    if changed:
        parts.append(f"changed: {', '.join(changed)}")
    if new.get("pip_options") != old.get("pip_options"):
        parts.append("pip options differ")
    if new.get("context_digest") != old.get("context_digest"):
        parts.append("build context changed")
    if not parts:
        return "the same environment is cached but was not complete"
    return "nearest cached environment differs: " + "; ".join(parts)
