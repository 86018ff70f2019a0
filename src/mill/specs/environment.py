"""How a job names its environment (yaml-reference §6): validated and recorded, not built.

A job's ``environment`` is a reference (``azureml:<name>:<version>``,
``azureml:<name>@<label>``, ``azureml://registries/<reg>/environments/...``), a local
environment YAML file (``file:env.yml``), or an inline mapping. With a base folder, a file
environment is loaded and inlined, and every local path (``conda_file``, ``build.path``)
becomes absolute; problems inside those files name those files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from mill.errors import SpecError, SpecIssue

from .context import SpecContext, context_of
from .fields import OptionalText, TextMap, choice
from .problems import (
    Problem,
    Problems,
    fail,
    from_validation_error,
    problem,
    to_issues,
    with_prefix,
)
from .references import classify_path, looks_like_placeholder, parse_asset_reference
from .yamldoc import YamlDocument, load_yaml

__all__ = ["BuildContext", "EnvironmentSpec", "check_environment", "load_environment"]

ENVIRONMENT_FORMS = (
    "azureml:<name>:<version>, azureml:<name>@<label>, azureml://registries/..., "
    "file:<path.yml> or an inline mapping"
)
_CONDA_DEPENDENCIES = "a list of conda packages (and a pip: list)"


class BuildContext(BaseModel):
    """A Docker build context: a folder holding a Dockerfile."""

    model_config = ConfigDict(extra="forbid")

    path: str
    dockerfile_path: OptionalText = None


class PythonSection(BaseModel):
    """Azure ML SDK v1's ``python`` section: run in an existing interpreter, as is."""

    model_config = ConfigDict(extra="forbid")

    user_managed_dependencies: bool = False
    interpreter_path: OptionalText = None


class EnvironmentSpec(BaseModel):
    """An environment as an environment YAML file or an inline mapping describes it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: OptionalText = Field(default=None, alias="$schema")
    name: OptionalText = None
    version: OptionalText = None
    image: OptionalText = None
    # A path, or the conda file's content inline (as azure-ai-ml's Environment accepts).
    conda_file: OptionalText | dict[str, Any] = None
    build: BuildContext | None = None
    description: OptionalText = None
    tags: TextMap = Field(default_factory=dict)
    inference_config: dict[str, Any] | None = None
    python: PythonSection | None = None
    os_type: Annotated[Literal["linux", "windows"] | None, choice(("linux", "windows"))] = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> EnvironmentSpec:
        user_managed = self.python is not None and self.python.user_managed_dependencies
        if (
            self.image is None
            and self.conda_file is None
            and self.build is None
            and not user_managed
        ):
            fail(
                problem(
                    "nothing to build the environment from",
                    allowed="at least one of image, conda_file, build "
                    "(or python.user_managed_dependencies: true)",
                )
            )
        context = context_of(info)
        if context is None:
            return self
        problems: list[Problem] = []
        if isinstance(self.conda_file, str) and classify_path(self.conda_file) == "local":
            try:
                self.conda_file = _check_conda_file(self.conda_file, context)
            except Problems as exc:
                problems.extend(with_prefix(("conda_file",), exc.problems))
        if self.build is not None and classify_path(self.build.path) == "local":
            try:
                self.build.path = _check_build(self.build, context)
            except Problems as exc:
                problems.extend(with_prefix(("build", "path"), exc.problems))
        if problems:
            fail(*problems)
        return self

    def as_inline(self) -> dict[str, Any]:
        """The mapping a job records as its inline environment."""
        return self.model_dump(mode="json", exclude_none=True, exclude={"schema_"})


def check_environment(value: Any, info: ValidationInfo) -> str | dict[str, Any] | None:
    """Validate a job's ``environment``; file environments are inlined when paths resolve."""
    if value is None:
        return None
    context = context_of(info)
    if isinstance(value, EnvironmentSpec):
        return value.as_inline()
    if isinstance(value, dict):
        try:
            spec = EnvironmentSpec.model_validate(value, context=info.context)
        except ValidationError as exc:
            fail(*from_validation_error(exc, EnvironmentSpec))
        return spec.as_inline()
    if not isinstance(value, str):
        fail(problem("not an environment reference", value=value, allowed=ENVIRONMENT_FORMS))
    text = value.strip()
    if text.startswith("azureml:"):
        return _check_reference(value)
    if text.startswith("file:") or text.lower().endswith((".yml", ".yaml")):
        if context is None:
            return value
        try:
            return _load_environment_file(text, context)
        except Problems as exc:
            fail(*exc.problems)
    message = "not an environment reference"
    if looks_like_placeholder(text):
        message = "a placeholder, not an environment reference: replace it (for example with --set)"
    fail(problem(message, value=value, allowed=ENVIRONMENT_FORMS))


def load_environment(path: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """An environment YAML file (with ``--set`` overrides), validated, local paths absolute.

    Its ``name`` and ``version`` are kept; every issue names this file and its line.
    """
    from .overrides import apply_overrides

    doc = load_yaml(path)
    data = apply_overrides(doc.data, overrides) if overrides else doc.data
    doc = YamlDocument(data, doc.file, doc.base_dir, doc.lines)
    context = SpecContext(base_dir=doc.base_dir, shown_dir=os.path.dirname(doc.file))
    try:
        spec = EnvironmentSpec.model_validate(doc.data, context=context.as_context())
    except ValidationError as exc:
        raise SpecError(to_issues(from_validation_error(exc, EnvironmentSpec), doc)) from None
    except Problems as exc:
        raise SpecError(to_issues(exc.problems, doc)) from None
    return spec.as_inline()


def _check_reference(value: str) -> str:
    ref = parse_asset_reference(value)
    if ref is None or (ref.registry is not None and ref.kind != "environments"):
        fail(problem("not an environment reference", value=value, allowed=ENVIRONMENT_FORMS))
    if ref.version is None and ref.label is None:
        fail(
            problem(
                "an environment reference needs a version or a label",
                value=value,
                allowed=f"{value.strip()}:<version> or {value.strip()}@latest"
                if ref.registry is None
                else f"{value.strip().rstrip('/')}/versions/<version> or .../labels/latest",
            )
        )
    return value.strip()


def _load_environment_file(text: str, context: SpecContext) -> dict[str, Any]:
    raw = text[len("file:") :] if text.startswith("file:") else text
    resolved = context.existing(text, want="file")
    shown = context.show(raw)
    try:
        doc = load_yaml(Path(resolved))
    except SpecError as exc:
        raise Problems(Problem(i.message, issue=_renamed(i, shown)) for i in exc.issues) from None
    doc = YamlDocument(doc.data, shown, doc.base_dir, doc.lines)
    inner = SpecContext(base_dir=doc.base_dir, shown_dir=os.path.dirname(shown))
    try:
        spec = EnvironmentSpec.model_validate(doc.data, context=inner.as_context())
    except ValidationError as exc:
        issues = to_issues(from_validation_error(exc, EnvironmentSpec), doc)
        raise Problems(Problem(i.message, issue=i) for i in issues) from None
    return spec.as_inline()


def _check_conda_file(value: str, context: SpecContext) -> str:
    resolved = context.existing(value, want="file")
    shown = context.show(value[len("file:") :] if value.startswith("file:") else value)
    try:
        doc = load_yaml(Path(resolved))
    except SpecError as exc:
        raise Problems(Problem(i.message, issue=_renamed(i, shown)) for i in exc.issues) from None
    doc = YamlDocument(doc.data, shown, doc.base_dir, doc.lines)
    dependencies = doc.data.get("dependencies")
    if not isinstance(dependencies, list):
        found = (
            problem(
                "required field is missing", path=("dependencies",), allowed=_CONDA_DEPENDENCIES
            )
            if "dependencies" not in doc.data
            else problem(path=("dependencies",), value=dependencies, allowed=_CONDA_DEPENDENCIES)
        )
        issues = to_issues([found], doc)
        raise Problems(Problem(i.message, issue=i) for i in issues)
    return resolved


def _check_build(build: BuildContext, context: SpecContext) -> str:
    folder = context.existing(build.path, want="folder")
    name = build.dockerfile_path or "Dockerfile"
    dockerfile = Path(folder) / name
    if not dockerfile.is_file():
        raise Problems(
            [
                problem(
                    f"the build folder has no {name}: {dockerfile}",
                    value=build.path,
                    allowed="a folder holding a Dockerfile (or the build.dockerfile_path given)",
                )
            ]
        )
    return folder


def _renamed(issue: SpecIssue, shown: str) -> SpecIssue:
    """An issue from :func:`load_yaml` on a resolved path, renamed to the user's own path."""
    message = issue.message.replace(str(issue.file), shown) if issue.file else issue.message
    return replace(issue, file=shown if issue.file else None, message=message)
