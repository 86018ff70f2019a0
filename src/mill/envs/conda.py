"""Conda files to pip requirements (curated-environments.md, "Conda files → pip").

The ``pip:`` list is kept as it is (option lines become pip options); conda packages map
to their PyPI names, ``name=ver`` becomes ``name==ver.*`` (``name==ver`` when fully
pinned), ``name>=ver`` stays; ``pip`` and ``python`` are not packages; ``channel::``
prefixes go. Packages that only exist on conda are an error naming them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from mill.errors import SpecError, SpecIssue

from .requirements import (
    RequirementSyntaxError,
    canonical_requirement,
    normalize_name,
    parse_pip_line,
    split_specifier,
)

__all__ = ["CONDA_ONLY", "CONDA_TO_PYPI", "CondaRequirements", "conda_to_pip"]

# Conda package names whose PyPI project has another name.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "pytorch-cpu": "torch",
    "pytorch-gpu": "torch",
    "py-xgboost": "xgboost",
    "py-xgboost-cpu": "xgboost",
    "py-xgboost-gpu": "xgboost",
    "tensorflow-gpu": "tensorflow",
    "matplotlib-base": "matplotlib",
    "py-opencv": "opencv-python",
    "opencv": "opencv-python",
    "python-graphviz": "graphviz",
    "pytables": "tables",
    "msgpack-python": "msgpack",
    "pyqt": "pyqt5",
    "lightgbm-cpu": "lightgbm",
}

# Conda packages with no PyPI counterpart: system libraries, compilers, CUDA, conda's own.
CONDA_ONLY = frozenset(
    {
        "_libgcc_mutex",
        "_openmp_mutex",
        "blas",
        "bzip2",
        "ca-certificates",
        "cudatoolkit",
        "cuda-toolkit",
        "cuda-version",
        "cuda-nvcc",
        "cuda-runtime",
        "cudnn",
        "graphviz",
        "intel-openmp",
        "ld_impl_linux-64",
        "libblas",
        "libcblas",
        "libffi",
        "libgcc",
        "libgcc-ng",
        "libgfortran",
        "libgfortran-ng",
        "libgomp",
        "liblapack",
        "libopenblas",
        "libstdcxx-ng",
        "libuuid",
        "magma",
        "mkl",
        "mkl-service",
        "mkl_fft",
        "mkl_random",
        "mpi",
        "mpich",
        "nccl",
        "ncurses",
        "nomkl",
        "numpy-base",
        "openblas",
        "openmpi",
        "openssl",
        "r-base",
        "readline",
        "sqlite",
        "tk",
        "xz",
        "zlib",
    }
)

_CONDA_ONLY_NAMES = frozenset(normalize_name(n) for n in CONDA_ONLY)
_MATCH_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_][A-Za-z0-9_.+-]*)\s*(?P<version>.*)$")
_NOT_PACKAGES = {"python", "pip"}


@dataclass
class CondaRequirements:
    """What a conda file asks for, in pip's terms."""

    python_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    name: str | None = None


def conda_to_pip(conda: Any, source: str | None = None) -> CondaRequirements:
    """Translate a parsed conda file; every problem is a :class:`SpecError` naming ``source``."""
    file = source or "conda file"
    if not isinstance(conda, dict):
        raise SpecError.one(
            "a conda file must be a mapping",
            file=file,
            value=conda,
            allowed="name, channels, dependencies",
        )
    result = CondaRequirements(
        name=conda.get("name") if isinstance(conda.get("name"), str) else None
    )
    dependencies = conda.get("dependencies") or []
    if not isinstance(dependencies, list):
        raise SpecError.one(
            "must be a list",
            file=file,
            field="dependencies",
            value=dependencies,
            allowed="a list of conda packages (and a pip: list)",
        )
    if conda.get("variables"):
        result.notes.append(f"{file}: conda variables are not set in the environment")
    issues: list[SpecIssue] = []
    conda_only: list[str] = []
    for index, dependency in enumerate(dependencies):
        where = f"dependencies[{index}]"
        try:
            if isinstance(dependency, str):
                _conda_package(dependency, result, conda_only)
            elif isinstance(dependency, dict) and set(dependency) == {"pip"}:
                _pip_list(dependency["pip"], result, file, where, issues)
            else:
                issues.append(
                    SpecIssue(
                        "not a conda dependency",
                        file=file,
                        field=where,
                        value=dependency,
                        has_value=True,
                        allowed="a package string or a {pip: [...]} mapping",
                    )
                )
        except RequirementSyntaxError as exc:
            issues.append(SpecIssue(str(exc), file=file, field=where))
    if conda_only:
        issues.append(
            SpecIssue(
                f"conda-only packages with no PyPI counterpart: {', '.join(conda_only)}",
                file=file,
                field="dependencies",
            )
        )
    if issues:
        raise SpecError(
            issues,
            hint="Mill builds a pip virtualenv; drop system and CUDA packages, and list PyPI names",
        )
    return result


def _conda_package(text: str, result: CondaRequirements, conda_only: list[str]) -> None:
    spec = text.strip()
    if "::" in spec:
        spec = spec.split("::", 1)[1].strip()
    head, _, tail = spec.partition("/")
    if tail and " " not in head:  # the older channel/name form
        spec = tail.strip()
    match = _MATCH_SPEC.match(spec)
    if match is None:
        raise RequirementSyntaxError(f"not a conda package: {text!r}")
    raw_name = match.group("name")
    name = normalize_name(raw_name)
    version = _pip_version(match.group("version").strip(), text)
    if name == "python":
        result.python_version = _python_pin(version)
        return
    if name in _NOT_PACKAGES:
        return
    if name in _CONDA_ONLY_NAMES:
        conda_only.append(raw_name)
        return
    pypi = CONDA_TO_PYPI.get(name, name)
    result.requirements.append(canonical_requirement(pypi + version))


def _pip_version(version: str, text: str) -> str:
    """A conda version constraint in pip's syntax (empty when there is none)."""
    if not version:
        return ""
    if "|" in version:
        raise RequirementSyntaxError(f"conda 'or' versions cannot be translated: {text!r}")
    if version.startswith("==") or version[0] in "<>!~":
        return version.replace(" ", "")
    # "=1.2", "=1.2=build", "1.2" (space-separated) and "1.2.*" are conda's fuzzy pins.
    bare = version.lstrip("=").strip().split("=")[0].split()[0]
    if not re.fullmatch(r"[0-9][A-Za-z0-9.]*(\.\*)?", bare):
        raise RequirementSyntaxError(f"not a conda version: {text!r}")
    if bare.endswith(".*"):
        return f"=={bare}"
    if len(bare.split(".")) >= 3:
        return f"=={bare}"
    return f"=={bare}.*"


def _python_pin(version: str) -> str | None:
    """``==3.8.*`` or ``==3.8.5`` -> ``3.8``; ranges are no pin."""
    if not version:
        return None
    clauses = split_specifier(version)
    for op, value in clauses:
        if op == "==":
            parts = value.split(".")
            if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
                return f"{parts[0]}.{parts[1]}"
    return None


def _pip_list(
    items: Any, result: CondaRequirements, file: str, where: str, issues: list[SpecIssue]
) -> None:
    if not isinstance(items, list):
        issues.append(
            SpecIssue(
                "must be a list",
                file=file,
                field=f"{where}.pip",
                value=items,
                has_value=True,
                allowed="pip requirement lines",
            )
        )
        return
    for position, item in enumerate(items):
        field_path = f"{where}.pip[{position}]"
        if not isinstance(item, str):
            issues.append(
                SpecIssue(
                    "not a pip requirement line",
                    file=file,
                    field=field_path,
                    value=item,
                    has_value=True,
                    allowed="a string",
                )
            )
            continue
        try:
            parsed = parse_pip_line(item)
        except RequirementSyntaxError as exc:
            issues.append(SpecIssue(str(exc), file=file, field=field_path))
            continue
        for option, path in parsed.files:
            issues.append(
                SpecIssue(
                    f"{option} {path} is not supported in a conda file",
                    file=file,
                    field=field_path,
                    allowed="requirement lines and index options (--extra-index-url, ...)",
                )
            )
        result.requirements.extend(parsed.requirements)
        result.pip_options.extend(parsed.options)
        if parsed.ignored:
            result.notes.append(f"{file}: pip options ignored: {' '.join(parsed.ignored)}")
