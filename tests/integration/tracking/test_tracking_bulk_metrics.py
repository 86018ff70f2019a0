"""Bulk metric writes (COPY on PostgreSQL, executemany on SQLite) keep every point exactly."""

from __future__ import annotations

import math

from mill.domain.entities import Workspace
from mill.store import SqlStore
from mill.store.tracking import SqlTrackingStore


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
