"""``${{...}}`` expressions and ``$[[...]]`` optional fragments in a job's command (§3).

Standard library only, and no other Mill module: the job runtime may reuse this file.

* ``${{inputs.x}}``, ``${{outputs.y}}`` and ``${{name}}`` are replaced textually; whitespace
  inside the braces is allowed (``${{ inputs.x }}``).
* ``$[[ ... ]]`` is kept (without the brackets) when every input inside it has a value and
  dropped entirely otherwise; ``$[[inputs.x]]`` is the bare form of ``$[[${{inputs.x}}]]``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass

__all__ = [
    "CommandProblem",
    "Reference",
    "check_command",
    "command_references",
    "format_literal",
    "render_command",
]

_TOKEN = re.compile(r"\$\[\[(?P<fragment>.*?)\]\]|\$\{\{(?P<expr>.*?)\}\}", re.S)
_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.S)
_BARE = re.compile(r"^\s*((?:inputs|outputs)\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)\s*$")
_OPENERS = re.compile(r"\$\{\{|\$\[\[")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALLOWED = "${{inputs.<name>}}, ${{outputs.<name>}}, ${{name}}, $[[...]]"


@dataclass(frozen=True)
class Reference:
    """One expression found in a command.

    ``kind`` is the first dotted word (``inputs``, ``outputs``, ``name``, ``search_space``,
    ``parent``...) or ``invalid`` for text that is not an expression (``${{}}``, an
    unterminated ``${{``); ``key`` is the rest (the input or output name), ``text`` the
    expression as written and ``optional_fragment`` whether it sits inside ``$[[...]]``.
    """

    kind: str
    key: str | None
    text: str
    optional_fragment: bool = False


@dataclass(frozen=True)
class CommandProblem:
    """Something wrong with one expression of a command (see :func:`check_command`)."""

    message: str
    text: str
    allowed: str


@dataclass(frozen=True)
class _Token:
    start: int
    end: int
    refs: tuple[Reference, ...]
    fragment: str | None  # inner text of a `$[[...]]`, None for a plain `${{...}}`


def command_references(command: str) -> list[Reference]:
    """Every expression of ``command`` in order, including malformed ones (kind ``invalid``)."""
    refs: list[Reference] = []
    for token in _tokens(command):
        refs.extend(token.refs)
    return refs


def check_command(
    command: str, inputs: Mapping[str, bool], outputs: Collection[str]
) -> list[CommandProblem]:
    """Problems with the expressions of ``command``.

    ``inputs`` maps each declared input name to whether it is optional; ``outputs`` holds
    the declared output names.
    """
    problems: list[CommandProblem] = []
    declared_inputs = ", ".join(sorted(inputs)) or "(no inputs are declared)"
    declared_outputs = ", ".join(sorted(outputs)) or "(no outputs are declared)"
    for ref in command_references(command):
        if ref.kind in ("inputs", "outputs") and ref.key is None:
            problems.append(
                CommandProblem("not an expression a command job understands", ref.text, _ALLOWED)
            )
        elif ref.kind == "inputs" and ref.key is not None and ref.key in inputs:
            if inputs[ref.key] and not ref.optional_fragment:
                problems.append(
                    CommandProblem(
                        f"optional input {ref.key!r} must be used inside $[[...]] so the text "
                        "can be dropped when it is not given",
                        ref.text,
                        f"$[[... {ref.text} ...]]",
                    )
                )
        elif ref.kind == "inputs":
            problems.append(
                CommandProblem(f"input {ref.key!r} is not declared", ref.text, declared_inputs)
            )
        elif ref.kind == "outputs" and ref.key in outputs:
            continue
        elif ref.kind == "outputs":
            problems.append(
                CommandProblem(f"output {ref.key!r} is not declared", ref.text, declared_outputs)
            )
        elif ref.kind == "name" and ref.key is None:
            continue
        elif ref.kind == "search_space":
            problems.append(
                CommandProblem(
                    "${{search_space...}} belongs to sweep jobs, not command jobs",
                    ref.text,
                    _ALLOWED,
                )
            )
        elif ref.kind == "parent":
            problems.append(
                CommandProblem(
                    "${{parent...}} belongs to pipeline jobs, not command jobs", ref.text, _ALLOWED
                )
            )
        else:
            problems.append(
                CommandProblem("not an expression a command job understands", ref.text, _ALLOWED)
            )
    return problems


def render_command(
    command: str, *, inputs: Mapping[str, str | None], outputs: Mapping[str, str], name: str
) -> str:
    """Substitute expressions textually; drop ``$[[...]]`` whose inputs have no value.

    An input "has no value" when it is missing from ``inputs`` or maps to ``None``. Values
    must already be text (see :func:`format_literal`). Raises ``ValueError`` for an
    expression that cannot be rendered (an input without value outside ``$[[...]]``, an
    unknown output, a sweep or pipeline expression).
    """
    parts: list[str] = []
    position = 0
    for token in _tokens(command):
        parts.append(command[position : token.start])
        position = token.end
        if token.start == token.end:  # an unterminated `${{` stays as it is
            continue
        if token.fragment is None:
            parts.append(_value(token.refs[0], inputs, outputs, name, command))
        elif all(r.kind != "inputs" or inputs.get(r.key or "") is not None for r in token.refs):
            parts.append(_render_fragment(token, inputs, outputs, name, command))
    parts.append(command[position:])
    return "".join(parts)


def format_literal(value: object) -> str:
    """How a literal input appears in a command: booleans as ``True``/``False`` like Azure."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _tokens(command: str) -> Iterator[_Token]:
    position = 0
    for match in _TOKEN.finditer(command):
        yield from _unterminated(command, position, match.start())
        position = match.end()
        fragment = match.group("fragment")
        if fragment is None:
            ref = _reference(match.group("expr"), match.group(0), optional=False)
            yield _Token(match.start(), match.end(), (ref,), None)
            continue
        refs = [_reference(m.group(1), m.group(0), optional=True) for m in _EXPR.finditer(fragment)]
        bare = _BARE.match(fragment)
        if not refs and bare:
            refs = [_reference(bare.group(1), match.group(0), optional=True)]
        yield _Token(match.start(), match.end(), tuple(refs), fragment)
    yield from _unterminated(command, position, len(command))


def _unterminated(command: str, start: int, end: int) -> Iterator[_Token]:
    for match in _OPENERS.finditer(command, start, end):
        text = command[match.start() : end].splitlines()[0] if end > match.start() else ""
        yield _Token(end, end, (Reference("invalid", None, text.strip()),), "")


def _reference(inner: str, text: str, *, optional: bool) -> Reference:
    parts = [p.strip() for p in inner.strip().split(".")]
    head, rest = parts[0], parts[1:]
    if not _IDENT.fullmatch(head):
        return Reference("invalid", None, text, optional)
    return Reference(head, ".".join(rest) or None, text, optional)


def _value(
    ref: Reference,
    inputs: Mapping[str, str | None],
    outputs: Mapping[str, str],
    name: str,
    command: str,
) -> str:
    if ref.kind == "inputs" and ref.key is not None:
        value = inputs.get(ref.key)
        if value is None:
            raise ValueError(f"input {ref.key!r} has no value, used outside $[[...]]: {ref.text}")
        return value
    if ref.kind == "outputs" and ref.key is not None and ref.key in outputs:
        return outputs[ref.key]
    if ref.kind == "name" and ref.key is None:
        return name
    raise ValueError(f"cannot render {ref.text!r} in command {command!r}")


def _render_fragment(
    token: _Token,
    inputs: Mapping[str, str | None],
    outputs: Mapping[str, str],
    name: str,
    command: str,
) -> str:
    inner = token.fragment or ""
    if not _EXPR.search(inner) and token.refs:  # bare `$[[inputs.x]]`
        return _value(token.refs[0], inputs, outputs, name, command)
    refs = iter(token.refs)
    return _EXPR.sub(lambda _m: _value(next(refs), inputs, outputs, name, command), inner)
