"""An environment definition to what Mill builds: an interpreter and pip requirements.

Pure apart from reading the build context and looking for interpreters on this machine.
Every problem that would make a build fail for certain (malformed conda files, conda-only
packages, pins known not to install, unknown curated names) is raised here, before any
build starts.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from mill.errors import MillError, SpecError
from mill.hashing import content_hash, file_sha256

from .conda import conda_to_pip
from .curated import curated_environment, curated_name
from .definition import EnvironmentDefinition, ResolvedEnvironment
from .dockerfile import read_dockerfile
from .images import map_image
from .interpreters import find_python, interpreter_version
from .pins import check_pins
from .requirements import requirement_name

__all__ = ["resolve"]


class _Collected:
    """Requirements gathered from several sources, with the file each came from."""

    def __init__(self) -> None:
        self.requirements: list[str] = []
        self.pip_options: list[str] = []
        self.notes: list[str] = []
        self.origins: dict[str, str | None] = {}
        self.python_pin: str | None = None
        self.python_origin: str | None = None

    def add(self, requirements: list[str], origin: str | None) -> None:
        for requirement in requirements:
            if requirement not in self.origins:
                self.requirements.append(requirement)
                self.origins[requirement] = origin

    def add_unless_named(self, requirement: str, origin: str) -> None:
        """Add an image's implied package unless the user already asks for it."""
        name = requirement_name(requirement)
        if all(requirement_name(r) != name for r in self.requirements):
            self.add([requirement], origin)

    def pin_python(self, version: str | None, origin: str) -> None:
        if version is not None:
            self.python_pin, self.python_origin = version, origin


def resolve(
    definition: EnvironmentDefinition, *, host_python: str = sys.executable
) -> ResolvedEnvironment:
    """What to build for ``definition``; raises :class:`SpecError` for what cannot be built."""
    if definition.user_managed:
        return _user_managed(definition)
    curated = definition.curated
    if curated is not None and (
        definition.image or definition.conda is not None or definition.build_context
    ):
        raise SpecError.one(
            "a curated environment cannot be combined with image, conda_file or build",
            field="environment",
            value=curated,
        )
    collected = _Collected()
    source: dict[str, Any] = {}
    context_digest = None
    image_requirements: list[str] = []
    if curated is not None:
        _curated(curated, collected, source)
    if definition.build_context is not None:
        context_digest = _dockerfile(definition, collected, source)
    elif definition.image:
        source["image"] = definition.image
        mapping = map_image(definition.image)
        collected.notes.extend(mapping.notes)
        collected.pin_python(mapping.python_version, f"image {definition.image}")
        image_requirements = mapping.requirements
    if definition.conda is not None:
        conda_file = definition.conda_source or "conda file"
        conda = conda_to_pip(definition.conda, conda_file)
        source["conda"] = conda_file
        if conda.name:
            source["conda_name"] = conda.name
        collected.add(conda.requirements, conda_file)
        collected.pip_options.extend(conda.pip_options)
        collected.notes.extend(conda.notes)
        collected.pin_python(conda.python_version, conda_file)
    if image_requirements:
        for requirement in image_requirements:
            collected.add_unless_named(requirement, f"image {definition.image}")
    python_version, python_path, version_used = _interpreter(collected, host_python)
    if tuple(int(p) for p in version_used.split(".")) >= (3, 11):
        check_pins(collected.requirements, collected.origins, version_used)
    return ResolvedEnvironment(
        kind="virtualenv",
        python_version=python_version,
        python_path=python_path,
        interpreter_version=version_used,
        requirements=collected.requirements,
        pip_options=collected.pip_options,
        notes=collected.notes,
        source=source,
        context_digest=context_digest,
    )


def _curated(reference: str, collected: _Collected, source: dict[str, Any]) -> None:
    name = curated_name(reference)
    if name is None:
        raise SpecError.one(
            "not a curated environment name",
            field="environment",
            value=reference,
            allowed="a name from: mill environment list --registry azureml",
        )
    env = curated_environment(name)
    source["curated"] = name
    collected.add(list(env.requirements), f"curated {name}")
    collected.notes.extend(f"curated {name}: {note}" for note in env.notes)
    collected.pin_python(env.python, f"curated {name}")


def _dockerfile(
    definition: EnvironmentDefinition, collected: _Collected, source: dict[str, Any]
) -> str | None:
    assert definition.build_context is not None  # checked by the caller
    context = Path(definition.build_context)
    parsed = read_dockerfile(context, definition.dockerfile_path)
    source["dockerfile"] = definition.dockerfile_path
    if parsed.image:
        source["image"] = parsed.image
    collected.notes.extend(parsed.notes)
    collected.pip_options.extend(parsed.pip_options)
    for requirement in parsed.requirements:
        collected.add([requirement], parsed.origins.get(requirement))
    collected.pin_python(parsed.python_version, f"{definition.dockerfile_path} FROM {parsed.image}")
    if not parsed.files_read:
        return None
    return content_hash({rel: file_sha256(path) for rel, path in parsed.files_read.items()})


def _interpreter(collected: _Collected, host_python: str) -> tuple[str, str, str]:
    """(version asked for, interpreter to create the venv with, that interpreter's version)."""
    host_version = interpreter_version(host_python)
    wanted = collected.python_pin
    if wanted is None or wanted == host_version:
        return host_version, host_python, host_version
    found = find_python(wanted)
    if found is not None:
        collected.notes.append(f"python {wanted} (from {collected.python_origin}): using {found}")
        return wanted, found, wanted
    collected.notes.append(
        f"python {wanted} asked for by {collected.python_origin}, but this machine has no "
        f"python{wanted}: using the host's python {host_version} ({host_python})"
    )
    return wanted, host_python, host_version


def _user_managed(definition: EnvironmentDefinition) -> ResolvedEnvironment:
    python = definition.python_path
    if not python:
        raise SpecError.one(
            "a user-managed environment needs the Python interpreter to run in",
            field="python_path",
            allowed="the path of an existing python executable",
        )
    path = Path(python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise SpecError.one(
            "the Python interpreter does not exist or is not executable",
            field="python_path",
            value=python,
        )
    try:
        version = interpreter_version(python)
    except MillError as exc:
        raise SpecError.one(exc.message, field="python_path", value=python) from exc
    return ResolvedEnvironment(
        kind="user_managed",
        python_version=version,
        python_path=python,
        interpreter_version=version,
        notes=[f"user-managed: runs in {python} as it is; nothing is installed"],
        source={"user_managed": python},
    )
