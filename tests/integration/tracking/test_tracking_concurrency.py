"""Eight writers logging to one workspace at once lose nothing and never see a lock error."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric


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
