"""MLflow search filter and order-by strings, parsed into plain clauses.

``metrics.acc > 0.9 AND params.lr = '0.1' AND tags.\\`my tag\\` LIKE 'a%'`` becomes a list of
:class:`Clause`; the store compiles them to SQL. Only ``AND`` joins clauses, as in MLflow.
Anything wrong raises :class:`~mill.errors.UsageError` with a message naming the problem
(the API answers it as MLflow's ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mill.errors import UsageError

__all__ = [
    "Clause",
    "OrderBy",
    "parse_experiment_filter",
    "parse_filter",
    "parse_order_by",
]

Entity = Literal["metric", "param", "tag", "attribute", "dataset"]
Value = str | float | tuple[str, ...]

_ENTITY_ALIASES: dict[str, Entity] = {
    "metric": "metric",
    "metrics": "metric",
    "param": "param",
    "params": "param",
    "parameter": "param",
    "parameters": "param",
    "tag": "tag",
    "tags": "tag",
    "attribute": "attribute",
    "attributes": "attribute",
    "attr": "attribute",
    "run": "attribute",
    "dataset": "dataset",
    "datasets": "dataset",
}
# ``datasets.<key>``: a run's dataset inputs (context is the mlflow.data.context tag).
DATASET_KEYS = ("name", "digest", "context")

# Run attributes that can be searched, and whether they compare as numbers.
RUN_ATTRIBUTES: dict[str, bool] = {
    "run_id": False,
    "run_name": False,
    "status": False,
    "user_id": False,
    "artifact_uri": False,
    "lifecycle_stage": False,
    "start_time": True,
    "end_time": True,
    "created": True,
    "creation_time": True,
}
EXPERIMENT_ATTRIBUTES: dict[str, bool] = {
    "name": False,
    "experiment_id": False,
    "lifecycle_stage": False,
    "creation_time": True,
    "last_update_time": True,
}

_NUMBER_OPS = ("=", "!=", ">", ">=", "<", "<=")
_STRING_OPS = ("=", "!=", "LIKE", "ILIKE", "IN", "NOT IN")

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<backtick>`[^`]*`)
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<op>!=|<>|>=|<=|==|=|>|<)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w.\-:/]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    """One comparison: ``<entity>.<key> <op> <value>``."""

    entity: Entity
    key: str
    op: str
    value: Value


@dataclass(frozen=True)
class OrderBy:
    entity: Entity
    key: str
    ascending: bool


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise UsageError(f"invalid filter {text!r}: unexpected {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(_Token(kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str, attributes: dict[str, bool]) -> None:
        self.text = text
        self.attributes = attributes
        self.tokens = _tokenize(text)
        self.pos = 0

    def fail(self, why: str) -> UsageError:
        return UsageError(f"invalid filter {self.text!r}: {why}")

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise self.fail("it ends too early")
        self.pos += 1
        return token

    def keyword(self, token: _Token | None) -> str:
        return token.text.upper() if token is not None and token.kind == "word" else ""

    def clauses(self) -> list[Clause]:
        result: list[Clause] = []
        while True:
            result.append(self.clause())
            token = self.peek()
            if token is None:
                return result
            word = self.keyword(token)
            if word == "OR":
                raise self.fail("OR is not supported; only AND joins clauses")
            if word != "AND":
                raise self.fail(f"expected AND, got {token.text!r}")
            self.take()

    def identifier(self) -> tuple[Entity, str]:
        token = self.take()
        if token.kind in ("backtick", "string"):
            return self.resolve(None, token.text[1:-1])
        if token.kind != "word":
            raise self.fail(f"expected an identifier like metrics.x, got {token.text!r}")
        head, dot, rest = token.text.partition(".")
        if not dot:
            return self.resolve(None, head)
        if head.lower() not in _ENTITY_ALIASES:
            raise self.fail(
                f"unknown entity {head!r}; use metrics., params., tags., datasets. or attributes."
            )
        if rest == "":
            quoted = self.take()
            if quoted.kind not in ("backtick", "string"):
                raise self.fail(f"expected a key after {token.text!r}")
            rest = quoted.text[1:-1]
        return self.resolve(_ENTITY_ALIASES[head.lower()], rest)

    def resolve(self, entity: Entity | None, key: str) -> tuple[Entity, str]:
        if not key:
            raise self.fail("empty key")
        if entity is None or entity == "attribute":
            if key not in self.attributes:
                known = ", ".join(sorted(self.attributes))
                raise self.fail(f"unknown attribute {key!r}; known: {known}")
            return "attribute", key
        if entity == "dataset" and key not in DATASET_KEYS:
            raise self.fail(f"unknown dataset key {key!r}; known: {', '.join(DATASET_KEYS)}")
        return entity, key

    def clause(self) -> Clause:
        entity, key = self.identifier()
        op = self.operator()
        numeric = entity == "metric" or (entity == "attribute" and self.attributes[key])
        allowed = _NUMBER_OPS if numeric else _STRING_OPS
        if op not in allowed:
            raise self.fail(f"{op} is not allowed for {entity} {key!r}; use one of {allowed}")
        if op in ("IN", "NOT IN"):
            return Clause(entity, key, op, self.string_list())
        token = self.take()
        if numeric:
            if token.kind != "number":
                raise self.fail(f"{entity} {key!r} compares with a number, got {token.text!r}")
            return Clause(entity, key, op, float(token.text))
        if token.kind != "string":
            raise self.fail(f"{entity} {key!r} compares with a quoted string, got {token.text!r}")
        return Clause(entity, key, op, token.text[1:-1])

    def operator(self) -> str:
        token = self.take()
        if token.kind == "op":
            return {"==": "=", "<>": "!="}.get(token.text, token.text)
        word = self.keyword(token)
        if word in ("LIKE", "ILIKE", "IN"):
            return word
        if word == "NOT" and self.keyword(self.peek()) == "IN":
            self.take()
            return "NOT IN"
        raise self.fail(f"expected a comparison operator, got {token.text!r}")

    def string_list(self) -> tuple[str, ...]:
        if self.take().text != "(":
            raise self.fail("IN needs a parenthesised list of quoted strings")
        values: list[str] = []
        while True:
            token = self.take()
            if token.kind != "string":
                raise self.fail(f"IN lists hold quoted strings, got {token.text!r}")
            values.append(token.text[1:-1])
            sep = self.take().text
            if sep == ")":
                return tuple(values)
            if sep != ",":
                raise self.fail(f"expected , or ) in the IN list, got {sep!r}")


def parse_filter(text: str | None, attributes: dict[str, bool] | None = None) -> list[Clause]:
    """Parse a run search filter; an empty or missing filter means no clauses."""
    if not text or not text.strip():
        return []
    return _Parser(text, RUN_ATTRIBUTES if attributes is None else attributes).clauses()


def parse_experiment_filter(text: str | None) -> list[Clause]:
    """Experiment search filters: ``name LIKE 'a%'``, ``tags.team = 'x'``."""
    clauses = parse_filter(text, EXPERIMENT_ATTRIBUTES)
    for clause in clauses:
        if clause.entity in ("metric", "param", "dataset"):
            raise UsageError(f"invalid filter {text!r}: experiments have no {clause.entity}s")
    return clauses


def parse_order_by(
    items: list[str] | None, attributes: dict[str, bool] | None = None
) -> list[OrderBy]:
    """``["metrics.acc DESC", "attributes.start_time"]`` → :class:`OrderBy` list."""
    result: list[OrderBy] = []
    for item in items or []:
        parser = _Parser(item, RUN_ATTRIBUTES if attributes is None else attributes)
        entity, key = parser.identifier()
        ascending = True
        token = parser.peek()
        if token is not None:
            word = parser.keyword(parser.take())
            if word not in ("ASC", "DESC") or parser.peek() is not None:
                raise UsageError(f"invalid order_by {item!r}: expected '<identifier> [ASC|DESC]'")
            ascending = word == "ASC"
        result.append(OrderBy(entity, key, ascending))
    return result
