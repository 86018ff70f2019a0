"""The builder's input (what the control plane knows) and its output (what to build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EnvironmentDefinition", "ResolvedEnvironment"]


class EnvironmentDefinition(BaseModel):
    """An environment as the control plane hands it over: contents, not file names.

    ``conda`` is the parsed conda YAML (``conda_source`` names it in messages);
    ``build_context`` is a local folder holding the Docker build context; ``curated`` is a
    curated name in any form :func:`mill.envs.curated_name` accepts; ``user_managed`` runs
    the job in ``python_path`` as it is.
    """

    model_config = ConfigDict(extra="forbid")

    image: str | None = None
    conda: dict[str, Any] | None = None
    conda_source: str | None = None
    build_context: Path | None = None
    dockerfile_path: str = "Dockerfile"
    curated: str | None = None
    user_managed: bool = False
    python_path: str | None = None


class ResolvedEnvironment(BaseModel):
    """What to build: an interpreter and pip requirements, with notes on what is not kept.

    ``python_version`` is the version asked for (conda pin, ``FROM python:3.X``, else the
    host's); ``interpreter_version`` is the version of ``python_path``, the interpreter the
    virtualenv is created with (they differ when the machine lacks the pinned one).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["virtualenv", "user_managed"] = "virtualenv"
    python_version: str
    python_path: str
    interpreter_version: str
    requirements: list[str] = Field(default_factory=list)
    pip_options: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    source: dict[str, Any] = Field(default_factory=dict)
    context_digest: str | None = None
