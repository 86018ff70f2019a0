"""Curated environments: Mill's pinned requirement sets under Azure ML's names.

The sets are data (``data/curated.json``), keyed by canonical name (``sklearn-1.5``).
Files refer to them as ``azureml://registries/azureml/environments/<name>/labels/latest``,
``.../versions/N``, ``azureml:AzureML-<name>@latest`` or ``azureml:AzureML-<name>:N``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from mill.errors import SpecError

__all__ = ["CuratedEnvironment", "curated_environment", "curated_name", "list_curated"]

_REGISTRY = re.compile(
    r"^azureml://registries/(?P<registry>[^/]+)/environments/(?P<name>[^/@:]+)"
    r"(?:/(?:labels|versions)/[^/]+)?/?$",
    re.IGNORECASE,
)
_SHORT = re.compile(r"^(?:azureml:)?(?P<name>[^/@:]+)(?:@[^/@:]+|:[^/@:]+)?$", re.IGNORECASE)
_PREFIX = "azureml-"


@dataclass(frozen=True)
class CuratedEnvironment:
    """One curated set: its canonical name, Python version and pip requirements."""

    name: str
    description: str
    python: str
    requirements: tuple[str, ...]
    notes: tuple[str, ...]


@lru_cache(maxsize=1)
def _data() -> dict[str, Any]:
    text = resources.files("mill.envs").joinpath("data/curated.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@cache
def curated_environment(name: str) -> CuratedEnvironment:
    """The set for a canonical name (as :func:`curated_name` returns)."""
    entry = _data()["environments"][name]
    requirements: list[str] = []
    if entry.get("extends"):
        requirements.extend(curated_environment(entry["extends"]).requirements)
    requirements.extend(entry["requirements"])
    return CuratedEnvironment(
        name=name,
        description=entry["description"],
        python=entry["python"],
        requirements=tuple(requirements),
        notes=tuple(entry.get("notes", ())),
    )


def list_curated() -> list[dict[str, Any]]:
    """Every curated set (name, requirements, description), for ``mill environment list``."""
    result = []
    for name in sorted(_data()["environments"]):
        env = curated_environment(name)
        result.append(
            {
                "name": env.name,
                "description": env.description,
                "python": env.python,
                "requirements": list(env.requirements),
                "notes": list(env.notes),
            }
        )
    return result


def curated_name(reference: str) -> str | None:
    """The canonical curated name ``reference`` means, or None when it is not curated.

    Curated-looking references (registry ``azureml``, an ``AzureML-`` prefix, a name Mill
    knows) that Mill does not provide raise a :class:`SpecError` listing the available names.
    """
    text = reference.strip()
    registry = _REGISTRY.match(text)
    if registry is not None:
        if registry.group("registry").lower() != "azureml":
            return None
        return _known(registry.group("name"), reference, curated_looking=True)
    short = _SHORT.match(text)
    if short is None:
        return None
    name = short.group("name")
    return _known(name, reference, curated_looking=name.lower().startswith(_PREFIX))


def _known(name: str, reference: str, *, curated_looking: bool) -> str | None:
    lowered = name.lower()
    if lowered.startswith(_PREFIX):
        lowered = lowered[len(_PREFIX) :]
    data = _data()
    if lowered in data["environments"]:
        return lowered
    unavailable = data["unavailable"].get(lowered)
    if unavailable is None and not curated_looking:
        return None
    available = ", ".join(sorted(data["environments"]))
    why = f" ({unavailable})" if unavailable else ""
    raise SpecError.one(
        f"curated environment {name!r} is not available in Mill{why}",
        field="environment",
        value=reference,
        allowed=available,
        hint="use one of the curated names above, or an environment with a conda file",
    )
