"""The Dockerfile subset Mill reproduces as a virtualenv.

Kept: ``FROM`` (mapped like an environment's ``image``), ``RUN pip install ...`` (also
``python -m pip``, ``pip3``, ``&&``-chained), and ``COPY``/``ADD`` of requirement files
that a later ``RUN pip install -r`` reads (their bytes go into the context digest).
Everything else is a note saying what is not reproduced, never an error.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mill.errors import SpecError

from .images import map_image
from .requirements import (
    PipArguments,
    RequirementSyntaxError,
    parse_pip_arguments,
    parse_pip_line,
    requirement_name,
)

__all__ = ["DockerfileRequirements", "read_dockerfile"]

_IGNORED = {
    "ENV", "WORKDIR", "LABEL", "EXPOSE", "CMD", "ENTRYPOINT", "USER", "ARG", "SHELL",
    "VOLUME", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER",
}  # fmt: skip
_PIP = re.compile(r"^pip(3(\.\d+)?)?$")
_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_SEPARATORS = {"&&", "||", ";", "|", "&"}
_LOCAL = (".", "/", "~")


@dataclass
class DockerfileRequirements:
    """What a Dockerfile asks for, in pip's terms."""

    image: str | None = None
    python_version: str | None = None
    requirements: list[str] = field(default_factory=list)
    pip_options: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    files_read: dict[str, Path] = field(default_factory=dict)  # context-relative -> path


@dataclass
class _Copy:
    sources: list[str]
    dest: str  # absolute in the image
    dest_is_dir: bool


@dataclass
class _State:
    context: Path
    name: str  # the Dockerfile's name for messages
    result: DockerfileRequirements = field(default_factory=DockerfileRequirements)
    workdir: str = "/"
    copies: list[_Copy] = field(default_factory=list)


def read_dockerfile(context: Path, dockerfile_path: str = "Dockerfile") -> DockerfileRequirements:
    """Read ``context/dockerfile_path``; a missing context or Dockerfile is a SpecError."""
    if not context.is_dir():
        raise SpecError.one(
            "the build context folder does not exist",
            field="build.path",
            value=str(context),
            allowed="a folder holding a Dockerfile",
        )
    dockerfile = context / dockerfile_path
    if not dockerfile.is_file():
        raise SpecError.one(
            f"no {dockerfile_path} in the build context {context}",
            field="build.dockerfile_path",
            value=dockerfile_path,
            allowed="a Dockerfile inside the build context",
        )
    state = _State(context=context, name=dockerfile_path)
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    for line_no, instruction, args in _instructions(text):
        _apply(state, line_no, instruction, args)
    return state.result


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """Logical lines: continuations joined, comments dropped, with their first line number."""
    result: list[tuple[int, str, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):  # also inside continuations, as Docker does
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        line = " ".join(p for p in pending if p)
        pending = []
        word, _, args = line.partition(" ")
        result.append((start, word.upper(), args.strip()))
    if pending:
        line = " ".join(p for p in pending if p)
        word, _, args = line.partition(" ")
        result.append((start, word.upper(), args.strip()))
    return result


def _apply(state: _State, line_no: int, instruction: str, args: str) -> None:
    where = f"{state.name}:{line_no}"
    notes = state.result.notes
    if instruction == "FROM":
        _from(state, where, args)
    elif instruction == "RUN":
        _run(state, where, args)
    elif instruction in ("COPY", "ADD"):
        _copy(state, where, instruction, args)
    elif instruction in _IGNORED:
        if instruction == "WORKDIR":
            state.workdir = posixpath.normpath(posixpath.join(state.workdir, args.strip('"')))
        notes.append(f"{where}: ignored: {instruction} {args}")
    else:
        notes.append(f"{where}: not reproduced: {instruction} {args}")


def _from(state: _State, where: str, args: str) -> None:
    words = [w for w in args.split() if not w.startswith("--")]
    image = words[0] if words else ""
    result = state.result
    if result.image is not None:
        # multi-stage: only the last stage's packages end up in the final image
        result.notes.append(f"{where}: multi-stage build: only the last stage is reproduced")
        state.result = DockerfileRequirements(notes=result.notes)
        state.workdir, state.copies = "/", []
    state.result.image = image
    mapping = map_image(image)
    state.result.python_version = mapping.python_version
    state.result.notes.extend(f"{where}: {note}" for note in mapping.notes)
    for requirement in mapping.requirements:
        _add(state.result, requirement, where)


def _add(result: DockerfileRequirements, requirement: str, origin: str) -> None:
    name = requirement_name(requirement)
    if name == "pip":  # upgrading pip means nothing in a fresh virtualenv
        return
    result.requirements.append(requirement)
    result.origins.setdefault(requirement, origin)


def _segments(args: str) -> list[list[str]]:
    if args.startswith("["):
        try:
            exec_form = json.loads(args)
        except json.JSONDecodeError:
            exec_form = None
        if isinstance(exec_form, list) and all(isinstance(a, str) for a in exec_form):
            if len(exec_form) == 3 and exec_form[1] == "-c" and exec_form[0].endswith("sh"):
                args = exec_form[2]
            else:
                return [exec_form]
    lexer = shlex.shlex(args, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segments: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token in _SEPARATORS:
                segments.append([])
            else:
                segments[-1].append(token)
    except ValueError:  # unbalanced quotes: not something Mill can read
        return [[args]]
    return [s for s in segments if s]


def _pip_install_args(tokens: list[str]) -> list[str] | None:
    """The arguments after ``install`` when ``tokens`` is a pip install command."""
    words = list(tokens)
    while words and (re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]) or words[0] == "sudo"):
        words.pop(0)
    if not words:
        return None
    head = posixpath.basename(words[0])
    if _PIP.match(head):
        rest = words[1:]
    elif _PYTHON.match(head) and words[1:3] == ["-m", "pip"]:
        rest = words[3:]
    elif head == "uv" and words[1:2] == ["pip"]:
        rest = words[2:]
    else:
        return None
    return rest[1:] if rest[:1] == ["install"] else None


def _run(state: _State, where: str, args: str) -> None:
    result = state.result
    reproduced_all = True
    for tokens in _segments(args):
        pip_args = _pip_install_args(tokens)
        if pip_args is None:
            reproduced_all = False
            continue
        try:
            parsed = parse_pip_arguments(pip_args)
        except RequirementSyntaxError as exc:
            raise SpecError.one(
                f"RUN pip install: {exc}", file=state.name, line=_line(where)
            ) from exc
        _take(state, parsed, where, base=state.workdir)
    if not reproduced_all:
        result.notes.append(f"{where}: not reproduced: RUN {args}")


def _take(state: _State, parsed: PipArguments, origin: str, *, base: str) -> None:
    result = state.result
    for requirement in parsed.requirements:
        if requirement.startswith(_LOCAL):
            result.notes.append(
                f"{origin}: not reproduced: installing the local path {requirement}"
            )
        else:
            _add(result, requirement, origin)
    result.pip_options.extend(parsed.options)
    if parsed.ignored:
        result.notes.append(f"{origin}: pip options ignored: {' '.join(parsed.ignored)}")
    for option, path in parsed.files:
        if option != "--requirement":
            result.notes.append(f"{origin}: not reproduced: {option} {path}")
            continue
        target = posixpath.normpath(posixpath.join(base, path))
        relative = _context_path(state, target)
        if relative is None:
            raise SpecError.one(
                f"pip install -r {path}: {target} is not copied from the build context",
                file=state.name,
                line=_line(origin),
                allowed="COPY or ADD the requirements file before the RUN that installs it",
            )
        _requirements_file(state, relative, depth=0)


def _context_path(state: _State, target: str) -> str | None:
    """The build-context path that the image path ``target`` was copied from."""
    for copy in reversed(state.copies):
        for source in copy.sources:
            source_path = (state.context / source).resolve()
            if source_path.is_dir():
                if target == copy.dest or target.startswith(copy.dest.rstrip("/") + "/"):
                    rel = posixpath.relpath(target, copy.dest)
                    candidate = posixpath.normpath(posixpath.join(source, rel))
                    if (state.context / candidate).is_file():
                        return candidate
            else:
                landed = (
                    posixpath.join(copy.dest, posixpath.basename(source))
                    if copy.dest_is_dir
                    else copy.dest
                )
                if landed == target:
                    return posixpath.normpath(source)
    return None


def _requirements_file(state: _State, relative: str, depth: int) -> None:
    path = (state.context / relative).resolve()
    if not path.is_relative_to(state.context.resolve()) or not path.is_file():
        raise SpecError.one(
            "a requirements file is outside the build context or missing",
            file=state.name,
            value=relative,
        )
    state.result.files_read[relative] = path
    text = path.read_text(encoding="utf-8", errors="replace").replace("\\\n", " ")
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_pip_line(line)
        except RequirementSyntaxError as exc:
            raise SpecError.one(str(exc), file=relative, line=number) from exc
        nested = [(o, p) for o, p in parsed.files if o == "--requirement"]
        parsed.files = [(o, p) for o, p in parsed.files if o != "--requirement"]
        _take(state, parsed, f"{relative}:{number}", base="/")
        for _, nested_path in nested:
            if depth >= 5:
                raise SpecError.one(
                    "requirements files nest too deeply", file=relative, line=number
                )
            inner = posixpath.normpath(posixpath.join(posixpath.dirname(relative), nested_path))
            _requirements_file(state, inner, depth + 1)


def _copy(state: _State, where: str, instruction: str, args: str) -> None:
    if args.startswith("["):
        try:
            words = [str(w) for w in json.loads(args)]
        except (json.JSONDecodeError, TypeError):
            words = args.split()
    else:
        words = shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    if any(f.startswith("--from") for f in flags) or len(paths) < 2:
        state.result.notes.append(f"{where}: not reproduced: {instruction} {args}")
        return
    *sources, dest = paths
    if any(re.match(r"^[a-z]+://", s) for s in sources):
        state.result.notes.append(f"{where}: not reproduced: {instruction} {args}")
        return
    dest_is_dir = dest.endswith("/") or dest in (".", "./") or len(sources) > 1
    absolute = posixpath.normpath(posixpath.join(state.workdir, dest))
    state.copies.append(_Copy([s.lstrip("/") or "." for s in sources], absolute, dest_is_dir))


def _line(where: str) -> int | None:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
