"""Bulk metric writes (COPY on PostgreSQL, executemany on SQLite) keep every point exactly."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import func, inspect, select
from tests.tracking_stores import store_with_run

from mill.domain.entities import Workspace
from mill.errors import NotFoundError, UsageError
from mill.store import SqlStore, migrate
from mill.store.tracking import DELETED, SqlTrackingStore
from mill.store.tracking_tables import MetricRow


def test_a_large_batch_round_trips_with_nan_and_order(db_url: str) -> None:
    store = SqlStore(db_url)
    store.migrate()
    store.create_workspace(Workspace("default"))
    tracking = SqlTrackingStore(store)
    experiment = tracking.create_experiment("default", "bulk")
    run = tracking.create_run("default", experiment)["info"]["run_id"]
    points = [
        {
            "key": "loss",
            "value": math.nan if i == 7 else 1.0 / (i + 1),
            "timestamp": 1000 + i,
            "step": i,
        }
        for i in range(300)
    ]
    tracking.log_batch(run, metrics=list(reversed(points)))
    tracking.log_batch(run, metrics=[{"key": "acc", "value": 0.5, "timestamp": 1, "step": 0}])
    history = tracking.metric_history(run, "loss")
    assert [step for _, _, step, _ in history] == list(range(300))
    assert [bool(nan) for _, _, step, nan in history if step == 7] == [True]
    assert history[3][0] == 0.25 and history[3][1] == 1003
    assert tracking.latest_metrics(run) == {"loss": 1.0 / 300, "acc": 0.5}
    store.dispose()


def _points(count: int) -> list[dict[str, object]]:
    return [
        {"key": "loss", "value": float(i), "timestamp": 1000 + i, "step": i} for i in range(count)
    ]


def _stored_points(store: SqlStore, run_id: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count()).select_from(MetricRow).where(MetricRow.run_uuid == run_id)
            )
            or 0
        )


def test_points_for_a_missing_run_are_refused_and_never_stored(db_url: str) -> None:
    """Metric points have no foreign key (migration 0008): the per-batch run check is
    what keeps orphan points out."""
    store = SqlStore(db_url)
    store.migrate()
    store.create_workspace(Workspace("default"))
    tracking = SqlTrackingStore(store)
    with pytest.raises(NotFoundError, match="Run with id=nope not found"):
        tracking.log_batch("nope", metrics=_points(200))
    assert _stored_points(store, "nope") == 0
    store.dispose()


def test_deleting_a_workspace_deletes_its_metric_points_only(db_url: str) -> None:
    store = SqlStore(db_url)
    store.migrate()
    tracking = SqlTrackingStore(store)
    runs = {}
    for name in ("gone", "kept"):
        store.create_workspace(Workspace(name))
        experiment = tracking.create_experiment(name, "e")
        runs[name] = tracking.create_run(name, experiment)["info"]["run_id"]
        tracking.log_batch(runs[name], metrics=_points(120))
    store.delete_workspace("gone")
    assert _stored_points(store, runs["gone"]) == 0
    assert _stored_points(store, runs["kept"]) == 120
    assert len(tracking.metric_history(runs["kept"], "loss")) == 120
    store.dispose()


def test_upgrading_from_0007_keeps_every_point(db_url: str) -> None:
    """0008 and 0009 rebuild the points table on SQLite (to drop its foreign key, then its
    id), 0009 drops a column on PostgreSQL: nothing may be lost, the order stays."""
    store = SqlStore(db_url)
    migrate.upgrade(store.engine, "0007")
    store.create_workspace(Workspace("default"))
    tracking = SqlTrackingStore(store)
    experiment = tracking.create_experiment("default", "old")
    run = tracking.create_run("default", experiment)["info"]["run_id"]
    tracking.log_batch(run, metrics=_points(250))
    migrate.upgrade(store.engine)
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    history = tracking.metric_history(run, "loss")
    assert [(v, t, s) for v, t, s, _ in history] == [(float(i), 1000 + i, i) for i in range(250)]
    with store.engine.connect() as conn:
        assert not inspect(conn).get_foreign_keys("tracking_metrics")
        columns = {c["name"] for c in inspect(conn).get_columns("tracking_metrics")}
        assert columns == {"run_uuid", "key", "value", "timestamp", "step", "is_nan"}
    tracking.log_batch(run, metrics=_points(2))  # and it still takes points
    assert len(tracking.metric_history(run, "loss")) == 252
    store.dispose()


@pytest.mark.parametrize("count", [1, 3, 200])  # PostgreSQL: one statement below 50, COPY above
def test_small_and_large_batches_keep_the_same_rules(db_url: str, count: int) -> None:
    store, tracking, run = store_with_run(db_url, "other")
    # Out of order, a tie on step broken by timestamp, a NaN: the latest value is MLflow's.
    points = [
        {"key": "loss", "value": 0.5, "timestamp": 20, "step": 5},
        {"key": "loss", "value": 0.9, "timestamp": 10, "step": 2},
        {"key": "loss", "value": 0.7, "timestamp": 10, "step": 5},
        {"key": "nan", "value": math.nan, "timestamp": 1, "step": 0},
    ][:count] + _points(max(0, count - 4))
    tracking.log_batch(run, metrics=points, workspace="default")
    tracking.log_batch(run, metrics=[{"key": "loss", "value": 0.1, "timestamp": 5, "step": 1}])
    assert _stored_points(store, run) == len(points) + 1
    latest = tracking.latest_metrics(run)
    assert latest["loss"] == {1: 0.5, 3: 0.5, 200: float(195)}[count]  # step 1 is older
    if count >= 4:
        assert math.isnan(latest["nan"])
    # Refused without writing: another workspace's run, a missing run, a deleted run.
    with pytest.raises(NotFoundError, match="not found"):
        tracking.log_batch(run, metrics=points, workspace="other")
    with pytest.raises(NotFoundError, match="Run with id=gone not found"):
        tracking.log_batch("gone", metrics=points)
    tracking.set_run_lifecycle(run, DELETED)
    with pytest.raises(UsageError, match="must be in the 'active' state"):
        tracking.log_batch(run, metrics=points)
    assert _stored_points(store, run) == len(points) + 1
    store.dispose()


def test_history_order_breaks_ties_by_value_and_pages_alike(db_url: str) -> None:
    """Points alike in step and timestamp come by value (MLflow's last tie-break), a NaN
    after a 0.0; paging through ties gives every point once, in the same order."""
    store, tracking, run = store_with_run(db_url)
    values = [3.0, math.nan, 1.0, 0.0, 2.0, 1.0]
    for value in values:  # one call each, so they are stored in this order
        tracking.log_batch(run, metrics=[{"key": "m", "value": value, "timestamp": 7, "step": 1}])
    tracking.log_batch(run, metrics=[{"key": "m", "value": 9.0, "timestamp": 1, "step": 0}])
    history = tracking.metric_history(run, "m")
    assert [(v, is_nan) for v, _, _, is_nan in history] == [
        (9.0, False), (0.0, False), (0.0, True), (1.0, False), (1.0, False), (2.0, False),
        (3.0, False),
    ]  # fmt: skip
    paged, token = [], None
    while True:
        page, token = tracking.metric_history_page(run, "m", max_results=2, page_token=token)
        paged += page
        if token is None:
            break
    assert paged == history
    store.dispose()


def test_a_big_batch_with_params_and_tags_is_one_transaction(db_url: str) -> None:
    """With params or tags a batch takes the general path (COPY on PostgreSQL, inside the
    same transaction as the params): a refused param leaves none of its points behind."""
    store, tracking, run = store_with_run(db_url)
    tracking.log_batch(run, metrics=_points(120), params={"lr": "0.1"}, tags={"team": "a"})
    assert _stored_points(store, run) == 120
    assert tracking.latest_metrics(run) == {"loss": 119.0}
    assert tracking.params(run) == {"lr": "0.1"}
    with pytest.raises(UsageError, match="Changing param values is not allowed"):
        tracking.log_batch(run, metrics=_points(120), params={"lr": "0.2"})
    assert _stored_points(store, run) == 120
    store.dispose()
