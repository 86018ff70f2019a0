"""Reading YAML files with the line of every key, so errors can say ``job.yml:14``.

PyYAML builds plain Python objects and forgets where they came from; it also lets a
repeated key silently win. We compose the node graph first (with libyaml when it is
available), record the line of every mapping key and sequence item, reject duplicate keys,
and only then construct the data from the same nodes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mill.errors import SpecError, SpecIssue

__all__ = ["FieldPath", "YamlDocument", "load_yaml", "parse_yaml_value"]

FieldPath = tuple[str | int, ...]

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# `{{VAR}}` (not the `${{...}}` expressions of Azure ML) marks a file a script must fill in.
_TEMPLATE_PLACEHOLDER = re.compile(r"(?<!\$)\{\{\s*[A-Za-z_][\w.-]*\s*\}\}")
TEMPLATE_HINT = (
    "this file looks like a template: substitute its {{...}} placeholders "
    "(for example with sed, as the sample scripts do) and load the result"
)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that keeps dates as text: `version: 2024-01-01` is a string, not a date."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}


@dataclass
class YamlDocument:
    """A parsed YAML file: its data, the name to show in messages and the line of each key."""

    data: Any
    file: str
    base_dir: Path
    lines: dict[FieldPath, int] = field(default_factory=dict, repr=False)

    def line_of(self, field_path: FieldPath) -> int | None:
        """1-based line of the key at ``field_path``, else of its nearest ancestor that has one."""
        path = tuple(field_path)
        while path:
            line = self.lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return None

    def has_line(self, field_path: FieldPath) -> bool:
        """Whether the file itself holds the key at ``field_path``."""
        return tuple(field_path) in self.lines


def load_yaml(path: Path) -> YamlDocument:
    """Read a YAML file whose top level is a mapping; every failure is a :class:`SpecError`."""
    shown = str(path)
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([SpecIssue(f"file not found: {shown}")]) from None
    except IsADirectoryError:
        raise SpecError([SpecIssue(f"expected a YAML file, found a folder: {shown}")]) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SpecError([SpecIssue(f"cannot read {shown}: {reason}")]) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError(
            [SpecIssue(f"not UTF-8 text (byte {exc.start} cannot be decoded)", file=shown)]
        ) from None
    data, lines = _parse(text, shown)
    if data is None:
        raise SpecError([SpecIssue("the file is empty; expected a mapping of fields", file=shown)])
    if not isinstance(data, dict):
        message = f"expected a mapping of fields at the top level, found {_kind(data)}"
        raise SpecError([SpecIssue(message, file=shown, line=lines.get((), 1))])
    base_dir = Path(os.path.abspath(path)).parent
    return YamlDocument(data=data, file=shown, base_dir=base_dir, lines=lines)


def parse_yaml_value(text: str) -> Any:
    """Parse one YAML scalar or flow collection (a ``--set`` value) with the same rules."""
    return yaml.load(text, Loader=_Loader)


def _parse(text: str, shown: str) -> tuple[Any, dict[FieldPath, int]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        lines: dict[FieldPath, int] = {}
        duplicates = list(_walk(node, (), lines, set()))
        if duplicates:
            raise SpecError(
                [SpecIssue(message, file=shown, line=line) for line, message in duplicates],
                _hint(text),
            )
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(exc, text, shown) from None
    except yaml.YAMLError as exc:
        raise SpecError([SpecIssue(f"invalid YAML: {exc}", file=shown)], _hint(text)) from None
    finally:
        loader.dispose()


def _walk(
    node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], seen: set[int]
) -> Iterator[tuple[int, str]]:
    """Record key lines below ``node``; yield ``(line, message)`` for each duplicate key."""
    if id(node) in seen:  # an alias of a node already walked (or a recursive one)
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.setdefault((*path, index), item.start_mark.line + 1)
            yield from _walk(item, (*path, index), lines, seen)
    elif isinstance(node, yaml.MappingNode):
        first_seen: dict[tuple[str, str], int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                yield line, "a mapping key must be a plain value, not a list or mapping"
                continue
            ident = (key_node.tag, key_node.value)
            if ident in first_seen:
                yield (
                    line,
                    f"duplicate key {key_node.value!r} (first given on line {first_seen[ident]})",
                )
                continue
            first_seen[ident] = line
            key = _key(key_node)
            lines[(*path, key)] = line
            yield from _walk(value_node, (*path, key), lines, seen)
        for source in merged:  # `<<: *base` keys keep their anchor's line; explicit keys win
            targets = source.value if isinstance(source, yaml.SequenceNode) else [source]
            for target in targets:
                if isinstance(target, yaml.MappingNode):
                    for key_node, _ in target.value:
                        if isinstance(key_node, yaml.ScalarNode):
                            sub = (*path, _key(key_node))
                            lines.setdefault(sub, key_node.start_mark.line + 1)


def _key(node: yaml.ScalarNode) -> str | int:
    if node.tag == "tag:yaml.org,2002:int":
        try:
            return int(node.value.replace("_", ""), 0)
        except ValueError:
            return str(node.value)
    return str(node.value)


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, shown: str) -> SpecError:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    message = f"invalid YAML: {exc.problem or exc.context or 'cannot parse'}"
    if exc.problem and exc.context:
        where = exc.context_mark
        started = f" started on line {where.line + 1}" if where is not None else ""
        message += f" ({exc.context}{started})"
    return SpecError([SpecIssue(message, file=shown, line=line)], _hint(text))


def _hint(text: str) -> str | None:
    return TEMPLATE_HINT if _TEMPLATE_PLACEHOLDER.search(text) else None


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return f"the single value {text if len(text) <= 60 else text[:57] + '...'}"
