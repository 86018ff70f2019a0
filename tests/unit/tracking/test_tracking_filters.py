"""The MLflow filter and order-by parser: good strings and the errors bad ones give."""

from __future__ import annotations

import pytest

from mill.errors import UsageError
from mill.store.tracking_filters import (
    Clause,
    OrderBy,
    parse_experiment_filter,
    parse_filter,
    parse_order_by,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("metrics.acc > 0.9", [Clause("metric", "acc", ">", 0.9)]),
        ("metric.loss <= -1e-3", [Clause("metric", "loss", "<=", -0.001)]),
        ("params.p = 'a'", [Clause("param", "p", "=", "a")]),
        ('tags.t != "x"', [Clause("tag", "t", "!=", "x")]),
        ("metrics.`my key` = 1", [Clause("metric", "my key", "=", 1.0)]),
        ("params.\"a b\" LIKE '%x'", [Clause("param", "a b", "LIKE", "%x")]),
        ("attributes.status = 'FINISHED'", [Clause("attribute", "status", "=", "FINISHED")]),
        ("attributes.run_name ilike '%A%'", [Clause("attribute", "run_name", "ILIKE", "%A%")]),
        ("status IN ('A', 'B')", [Clause("attribute", "status", "IN", ("A", "B"))]),
        ("tags.t NOT IN ('A')", [Clause("tag", "t", "NOT IN", ("A",))]),
        ("attributes.start_time >= 10", [Clause("attribute", "start_time", ">=", 10.0)]),
        (
            "metrics.a>1 and params.b='c' AND tags.d = 'e'",
            [
                Clause("metric", "a", ">", 1.0),
                Clause("param", "b", "=", "c"),
                Clause("tag", "d", "=", "e"),
            ],
        ),
    ],
)
def test_good_filters(text: str, expected: list[Clause]) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("metrics.acc >", "ends too early"),
        ("metrics.acc > 'a'", "compares with a number"),
        ("params.p = 1", "quoted string"),
        ("params.p > 'a'", "not allowed"),
        ("foo.bar = 1", "unknown entity"),
        ("attributes.nope = 'a'", "unknown attribute"),
        ("metrics.a > 1 OR metrics.b > 1", "OR is not supported"),
        ("metrics.a > 1 metrics.b > 1", "expected AND"),
        ("params.p IN 'a'", "parenthesised list"),
        ("params.p IN ('a' 'b')", "expected , or )"),
        ("metrics.a ~ 1", "unexpected"),
        ("metrics. > 1", "expected a key"),
    ],
)
def test_bad_filters(text: str, why: str) -> None:
    with pytest.raises(UsageError, match="invalid filter") as info:
        parse_filter(text)
    assert why in info.value.message


def test_experiment_filters() -> None:
    assert parse_experiment_filter("name LIKE 'a%'") == [Clause("attribute", "name", "LIKE", "a%")]
    with pytest.raises(UsageError, match="experiments have no metrics"):
        parse_experiment_filter("metrics.a > 1")


def test_order_by() -> None:
    assert parse_order_by(["metrics.x DESC", "attributes.start_time", "params.p asc"]) == [
        OrderBy("metric", "x", False),
        OrderBy("attribute", "start_time", True),
        OrderBy("param", "p", True),
    ]
    with pytest.raises(UsageError, match="invalid order_by"):
        parse_order_by(["metrics.x sideways"])


def test_dataset_filters() -> None:
    assert parse_filter("datasets.name IN ('a', 'b') AND dataset.context = 'train'") == [
        Clause("dataset", "name", "IN", ("a", "b")),
        Clause("dataset", "context", "=", "train"),
    ]
    with pytest.raises(UsageError, match="unknown dataset key 'source'"):
        parse_filter("datasets.source = 'x'")
    with pytest.raises(UsageError, match="is not allowed"):
        parse_filter("datasets.digest > 'x'")
    with pytest.raises(UsageError, match="experiments have no datasets"):
        parse_experiment_filter("datasets.name = 'x'")
