"""Concurrent writers to one workspace, or one run, lose nothing and never see a lock error."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag


def test_eight_concurrent_writers_lose_no_metric(server: Any) -> None:
    client = MlflowClient(server.url)
    exp = client.create_experiment("concurrent")
    runs = [client.create_run(exp).info.run_id for _ in range(8)]

    def write(run_id: str) -> None:
        writer = MlflowClient(server.url)
        for batch in range(10):
            metrics = [Metric("m", float(i), 0, batch * 100 + i) for i in range(100)]
            writer.log_batch(run_id, metrics=metrics)
        for step in range(20):
            writer.log_metric(run_id, "single", float(step), step=step)
            writer.log_param(run_id, f"p{step}", str(step))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, runs))  # re-raises any writer's error
    for run_id in runs:
        assert len(client.get_metric_history(run_id, "m")) == 1000
        assert len(client.get_metric_history(run_id, "single")) == 20
        run = client.get_run(run_id)
        assert len(run.data.params) == 20
        assert run.data.metrics["m"] == 99.0


def test_eight_writers_to_one_run_with_keys_in_any_order(server: Any) -> None:
    """Each batch updates the latest value of every key it holds (and some set tags); writers
    naming the same keys in different orders must not deadlock (PostgreSQL aborted one)."""
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment("one-run")).info.run_id
    keys = [f"k{i}" for i in range(8)]

    def write(writer_no: int) -> None:
        writer = MlflowClient(server.url)
        order = keys[writer_no:] + keys[:writer_no]  # every writer its own order
        for batch in range(6):
            size = 3 if batch % 2 else 100  # small batches and COPY-sized ones
            step = writer_no * 1000 + batch * 100
            metrics = [
                Metric(order[i % len(order)], float(step + i), 0, step + i) for i in range(size)
            ]
            tags = [RunTag(f"t-{k}", str(writer_no)) for k in order] if size == 3 else []
            writer.log_batch(run_id, metrics=metrics, tags=tags)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(8)))  # re-raises any writer's error
    assert {k for k in client.get_run(run_id).data.tags if k.startswith("t-")} == {
        f"t-{k}" for k in keys
    }
    per_writer = 3 * (3 + 100)
    assert sum(len(client.get_metric_history(run_id, k)) for k in keys) == 8 * per_writer
    latest = client.get_run(run_id).data.metrics
    assert (
        latest
        == {  # the highest step of each key, whoever wrote it
            k: max(
                float(w * 1000 + b * 100 + i)
                for w in range(8)
                for b in range(6)
                for i in range(3 if b % 2 else 100)
                if (keys[w:] + keys[:w])[i % 8] == k
            )
            for k in keys
        }
    )


def test_concurrent_log_model_calls_keep_every_entry(server: Any) -> None:
    """runs/log-model appends to the run's model history tag: on PostgreSQL two calls at once
    read the same history and the later write dropped the other's entry."""
    client = MlflowClient(server.url)
    run_id = client.create_run(client.create_experiment("log-models")).info.run_id

    def log_model(n: int) -> None:
        model = {"artifact_path": f"m{n}", "flavors": {}, "utc_time_created": "t", "run_id": run_id}
        answer = requests.post(
            f"{server.url}/api/2.0/mlflow/runs/log-model",
            json={"run_id": run_id, "model_json": json.dumps(model)},
            timeout=60,
        )
        assert answer.status_code == 200, answer.text

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(log_model, range(16)))
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert sorted(m["artifact_path"] for m in history) == sorted(f"m{n}" for n in range(16))
