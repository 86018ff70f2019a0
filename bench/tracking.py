"""Tracking: Mill's MLflow-compatible API vs `mlflow server` (SQLite), same client, one run.

Both servers are driven by the real `mlflow` client (MlflowClient), so the figures include
the client's own cost, as a user sees it:
  * log_batch of 1,000 metrics per call -> metrics/s
  * single log_metric calls -> metrics/s
  * get_metric_history of a 100,000-point metric -> seconds
  * search_runs with a metric and a param filter, and unfiltered -> median ms
    (over --peer-runs runs on both; Mill again over --runs runs)

Run: .venv/bin/python bench/tracking.py [--peer-runs 500 --runs 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from mill.config import Settings
from mill.server.process import start_background, stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_mlflow(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
            "--default-artifact-root", str(root / "mlflow-artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    client = MlflowClient(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            client.search_experiments()
            return proc, url
        except Exception:  # not up yet
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("mlflow server did not start")


def measure(url: str, search_runs: int) -> dict[str, Any]:
    client = MlflowClient(url)
    exp = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)

    # One untimed call of each kind first, for both servers: the first request pays for
    # statement compilation and cold caches, which is not the rate being measured.
    client.log_batch(run, metrics=[Metric("warm", 0.0, now, i) for i in range(1000)])
    client.log_metric(run, "warm-single", 0.0)
    batches = 10
    start = time.perf_counter()
    for b in range(batches):
        metrics = [Metric("loss", float(i), now, b * 1000 + i) for i in range(1000)]
        client.log_batch(run, metrics=metrics)
    batch_rate = batches * 1000 / (time.perf_counter() - start)

    singles = 200
    start = time.perf_counter()
    for i in range(singles):
        client.log_metric(run, "single", float(i), step=i)
    single_rate = singles / (time.perf_counter() - start)

    history_run = client.create_run(exp).info.run_id
    for b in range(100):
        client.log_batch(
            history_run, metrics=[Metric("h", float(i), now, b * 1000 + i) for i in range(1000)]
        )
    start = time.perf_counter()
    points = client.get_metric_history(history_run, "h")
    history_seconds = time.perf_counter() - start
    assert len(points) == 100_000, len(points)
    # The same answer on the raw API (read and JSON-decoded): what the server costs, without
    # the client's protobuf parsing of every point.
    raw = []
    with httpx.Client(base_url=url, timeout=120) as http:
        for _ in range(5):
            start = time.perf_counter()
            answer = http.get(
                "/api/2.0/mlflow/metrics/get-history",
                params={"run_id": history_run, "metric_key": "h"},
            ).json()
            raw.append(time.perf_counter() - start)
            assert len(answer["metrics"]) == 100_000

    search_exp = client.create_experiment(f"search-{time.time_ns()}")
    for i in range(search_runs):
        r = client.create_run(search_exp).info.run_id
        client.log_batch(
            r,
            metrics=[Metric("accuracy", (i % 100) / 100, now, 0)],
            params=[Param("kind", "a" if i % 2 else "b")],
        )
    filtered, unfiltered = [], []
    for _ in range(5):
        start = time.perf_counter()
        found = client.search_runs(
            [search_exp], "metrics.accuracy > 0.9 and params.kind = 'a'", max_results=1000
        )
        filtered.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.search_runs([search_exp], "", max_results=1000)
        unfiltered.append(time.perf_counter() - start)
    return {
        "log_batch_metrics_per_s": round(batch_rate),
        "log_metric_per_s": round(single_rate),
        "history_100k_s": round(history_seconds, 3),
        "history_100k_raw_api_s": round(statistics.median(raw), 3),
        f"search_{search_runs}_filtered_ms": round(statistics.median(filtered) * 1000, 1),
        f"search_{search_runs}_unfiltered_ms": round(statistics.median(unfiltered) * 1000, 1),
        "filtered_hits": len(found),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peer-runs", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument(
        "--mill-database-url",
        default=None,
        help="run Mill on this database (e.g. PostgreSQL) instead of SQLite",
    )
    parser.add_argument("--skip-peer", action="store_true", help="only measure Mill")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        peer: dict[str, Any] = {}
        if not args.skip_peer:
            proc, mlflow_url = start_mlflow(root)
            try:
                peer = measure(mlflow_url, args.peer_runs)
            finally:
                proc.terminate()
                proc.wait(timeout=30)
        env = {"MILL_HOME": str(root / "home")}
        if args.mill_database_url:
            env["MILL_DATABASE_URL"] = args.mill_database_url
        settings = Settings.from_env(env)
        info = start_background(settings, "127.0.0.1", 0)
        try:
            mill = measure(info["url"], args.peer_runs)
            mill_large = measure(info["url"], args.runs) if args.runs != args.peer_runs else {}
        finally:
            stop(settings)
    ratios: dict[str, float] = {}
    if peer:
        for k in ("log_batch_metrics_per_s", "log_metric_per_s"):
            ratios[k] = round(mill[k] / peer[k], 1)
        ratios["history_speedup"] = round(peer["history_100k_s"] / mill["history_100k_s"], 1)
        key = f"search_{args.peer_runs}_filtered_ms"
        ratios["search_filtered_speedup"] = round(peer[key] / mill[key], 1)
    results = {
        "mlflow_server_sqlite": peer,
        "mill": mill,
        "mill_large": mill_large,
        "mill_database": "postgresql" if args.mill_database_url else "sqlite",
        "ratios_mill_over_mlflow": ratios,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
