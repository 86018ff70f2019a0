"""pip requirement lines and pip options, parsed just enough to canonicalise them.

Only the standard library is used (no ``packaging``): a requirement is a name, extras, a
comma-separated specifier and a marker, or a direct reference (``name @ url``, a bare URL).
Names are normalised as PEP 503 says, so ``Scikit_Learn`` and ``scikit-learn`` are one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "PipArguments",
    "RequirementSyntaxError",
    "canonical_requirement",
    "normalize_name",
    "parse_pip_arguments",
    "parse_pip_line",
    "requirement_clauses",
    "requirement_name",
    "split_specifier",
]

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_REQUIREMENT = re.compile(rf"^(?P<name>{_NAME})\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<rest>.*)$")
_CLAUSE = re.compile(r"^(~=|===|==|!=|<=|>=|<|>)\s*([A-Za-z0-9][A-Za-z0-9.*+!_-]*)$")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^git\+|^file:")

# pip options Mill keeps (canonical long name -> takes a value).
_KEPT = {
    "--index-url": True,
    "--extra-index-url": True,
    "--find-links": True,
    "--trusted-host": True,
    "--no-binary": True,
    "--only-binary": True,
    "--pre": False,
    "--no-deps": False,
}
_SHORT = {"-i": "--index-url", "-f": "--find-links", "-U": "--upgrade", "-q": "--quiet"}
_SHORT.update({"-v": "--verbose", "-I": "--ignore-installed", "-r": "--requirement"})
_SHORT.update({"-c": "--constraint", "-e": "--editable", "-t": "--target"})
# Options that change nothing in a fresh virtualenv (or only pip's own behaviour).
_IGNORED = {
    "--upgrade": False,
    "--quiet": False,
    "--verbose": False,
    "--no-cache-dir": False,
    "--user": False,
    "--force-reinstall": False,
    "--ignore-installed": False,
    "--no-warn-script-location": False,
    "--disable-pip-version-check": False,
    "--no-compile": False,
    "--compile": False,
    "--no-build-isolation": False,
    "--break-system-packages": False,
    "--no-input": False,
    "--isolated": False,
    "--no-color": False,
    "--prefer-binary": False,
    "--require-hashes": False,
    "--progress-bar": True,
    "--root-user-action": True,
    "--cache-dir": True,
    "--timeout": True,
    "--retries": True,
    "--upgrade-strategy": True,
    "--exists-action": True,
    "--log": True,
    "--target": True,
    "--prefix": True,
}
# Options naming files or local paths: the caller decides what they mean.
_FILES = {"--requirement", "--constraint", "--editable"}


class RequirementSyntaxError(ValueError):
    """A line that is neither a requirement nor a pip option Mill understands."""


def normalize_name(name: str) -> str:
    """PEP 503: lowercase, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def split_specifier(specifier: str) -> list[tuple[str, str]]:
    """``">=1.2, <2"`` -> ``[(">=", "1.2"), ("<", "2")]``; raises on anything else."""
    clauses: list[tuple[str, str]] = []
    for part in specifier.split(","):
        match = _CLAUSE.match(part.strip())
        if match is None:
            raise RequirementSyntaxError(f"not a version specifier: {specifier.strip()!r}")
        clauses.append((match.group(1), match.group(2)))
    return clauses


def _strip_comment(line: str) -> str:
    # pip's rule: a comment starts at a '#' at the start or after whitespace.
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()


def canonical_requirement(line: str) -> str:
    """One requirement line in canonical form: normalised name, sorted extras, no spaces.

    ``Scikit_Learn [Alldeps] >= 1.2 , <2 ; python_version<'3.12'`` becomes
    ``scikit-learn[alldeps]>=1.2,<2; python_version<'3.12'``. Bare URLs and local paths
    are kept as written (stripped).
    """
    text = _strip_comment(line)
    if not text:
        raise RequirementSyntaxError("an empty requirement")
    if _URL.match(text) or text.startswith((".", "/", "~")):
        return text
    match = _REQUIREMENT.match(text)
    if match is None:
        raise RequirementSyntaxError(f"not a requirement: {text!r}")
    name = normalize_name(match.group("name"))
    extras_text = match.group("extras")
    extras = ""
    if extras_text is not None:
        items = sorted({normalize_name(e) for e in extras_text.split(",") if e.strip()})
        extras = f"[{','.join(items)}]" if items else ""
    rest = match.group("rest").strip()
    if rest.startswith("@"):
        url, _, marker = rest[1:].strip().partition(" ;")
        if not url.strip():
            raise RequirementSyntaxError(f"a direct reference without a URL: {text!r}")
        return f"{name}{extras} @ {url.strip()}" + _marker(marker)
    spec_text, _, marker = rest.partition(";")
    spec = ""
    if spec_text.strip():
        spec_body = spec_text.strip()
        if spec_body.startswith("(") and spec_body.endswith(")"):
            spec_body = spec_body[1:-1]
        spec = ",".join(op + version for op, version in split_specifier(spec_body))
    return f"{name}{extras}{spec}" + _marker(marker)


def _marker(marker: str) -> str:
    marker = " ".join(marker.split())
    return f"; {marker}" if marker else ""


def requirement_name(line: str) -> str | None:
    """The normalised project name of a canonical requirement (None for bare URLs/paths)."""
    if _URL.match(line) or line.startswith((".", "/", "~")):
        return None
    match = _REQUIREMENT.match(line)
    return normalize_name(match.group("name")) if match else None


def requirement_clauses(line: str) -> list[tuple[str, str]]:
    """The version clauses of a requirement (empty for URLs, paths and bare names)."""
    text = _strip_comment(line)
    if _URL.match(text) or text.startswith((".", "/", "~")):
        return []
    match = _REQUIREMENT.match(text)
    if match is None:
        return []
    rest = match.group("rest").strip()
    if rest.startswith("@"):
        return []
    spec = rest.partition(";")[0].strip().removeprefix("(").removesuffix(")")
    return split_specifier(spec) if spec else []


@dataclass
class PipArguments:
    """What the arguments of a ``pip install`` (or a requirements-file line) ask for."""

    requirements: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    files: list[tuple[str, str]] = field(default_factory=list)  # (option, path)


def parse_pip_arguments(tokens: Sequence[str]) -> PipArguments:
    """Split ``pip install`` arguments into requirements, kept options and ignored ones.

    Kept options come back in one canonical token each (``--extra-index-url=URL``,
    ``--pre``) and in order. ``-r``/``-c``/``-e`` come back in ``files`` for the caller.
    Raises :class:`RequirementSyntaxError` for an option pip does not have here.
    """
    result = PipArguments()
    items = list(tokens)
    i = 0
    while i < len(items):
        token = items[i]
        i += 1
        if not token.startswith("-") or token == "-":
            result.requirements.append(canonical_requirement(token))
            continue
        name, has_inline, value = token.partition("=")
        if not token.startswith("--") and len(token) > 2 and token[:2] in _SHORT:
            # -rreqs.txt, -ihttps://...; but -qq and -vv are a flag repeated
            name, has_inline, value = token[:2], "=", token[2:]
            if not _takes_value(_SHORT[name]) and set(value) == {name[1]}:
                has_inline, value = "", ""
        name = _SHORT.get(name, name)
        takes_value = _takes_value(name)
        if name not in _KEPT and name not in _IGNORED and name not in _FILES:
            raise RequirementSyntaxError(f"a pip option Mill does not know: {token!r}")
        if takes_value and not has_inline:
            if i >= len(items):
                raise RequirementSyntaxError(f"{token} needs a value")
            value = items[i]
            i += 1
        elif not takes_value and has_inline:
            raise RequirementSyntaxError(f"{name} takes no value; got {token!r}")
        if name in _FILES:
            result.files.append((name, value))
        elif name in _KEPT:
            result.options.append(f"{name}={value}" if takes_value else name)
        else:
            result.ignored.append(f"{name} {value}" if takes_value else name)
    return result


def _takes_value(name: str) -> bool:
    return _KEPT.get(name, _IGNORED.get(name, name in _FILES))


def parse_pip_line(line: str) -> PipArguments:
    """One line of a requirements file or a conda ``pip:`` list."""
    text = _strip_comment(line)
    if not text:
        return PipArguments()
    if text.startswith("-"):
        return parse_pip_arguments(shlex.split(text))
    return PipArguments(requirements=[canonical_requirement(text)])
