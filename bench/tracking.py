"""Tracking: Mill's MLflow-compatible API vs `mlflow server` (SQLite), same client, one run.

Both servers are driven by the real `mlflow` client (MlflowClient), so the figures include
the client's own cost, as a user sees it:
  * log_batch of 1,000 metrics per call -> metrics/s
  * single log_metric calls -> metrics/s
  * both again as prebuilt bodies on the raw API (httpx): the server's part
  * get_metric_history of a 100,000-point metric -> seconds, and the same answer on the raw
    API (the server's part, read and JSON-decoded with httpx)
  * search_runs with a metric and a param filter, and unfiltered -> median ms
    (over --peer-runs runs on both; Mill again over --runs runs)

The client's own cost is measured too, against a server that answers instantly
(bench/canned_server.py): the ceiling no server can pass with this client, and the ratios
say how near Mill comes to it.

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
from collections.abc import Callable
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


def median_s(call: Callable[[], object], repeat: int) -> float:
    """The median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def history_s(client: MlflowClient, run_id: str) -> float:
    """get_metric_history of the 100,000-point metric ``h``: median seconds of 3."""

    def read() -> None:
        points = client.get_metric_history(run_id, "h")
        assert len(points) == 100_000, len(points)

    return median_s(read, 3)


SEARCH_PATH = "/api/2.0/mlflow/runs/search"
SEARCH_FILTER = "metrics.accuracy > 0.9 and params.kind = 'a'"


def client_floor(url: str, run_id: str, search: tuple[str, str]) -> dict[str, Any]:
    """The mlflow client against a server that costs nothing (bench/canned_server.py):
    log_batch and log_metric answered with ``{}``, get_metric_history with the pages this
    server gave for ``run_id``, the filtered search with this server's answer
    (``search``: experiment id, answer). What no tracking server can beat with this client."""
    pages: dict[str, str] = {}
    token = ""
    with httpx.Client(base_url=url, timeout=120) as http:
        while True:
            params = {"run_id": run_id, "metric_key": "h", "max_results": "25000"}
            if token:
                params["page_token"] = token
            answer = http.get("/api/2.0/mlflow/metrics/get-history", params=params)
            pages[token] = answer.text
            token = answer.json().get("next_page_token") or ""
            if not token:
                break
    with tempfile.TemporaryDirectory() as tmp:
        answers, port_file = Path(tmp) / "answers.json", Path(tmp) / "port"
        answers.write_text(json.dumps({"GET": pages, "POST": {SEARCH_PATH: search[1]}}))
        canned = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("canned_server.py")), answers, port_file]
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or canned.poll() is not None:
                    raise RuntimeError("the canned-answer server did not start")
                time.sleep(0.05)
            client = MlflowClient(f"http://127.0.0.1:{port_file.read_text()}")
            batch_rate, single_rate = write_rates(client, run_id)
            history = history_s(client, run_id)
            searched = median_s(
                lambda: client.search_runs([search[0]], SEARCH_FILTER, max_results=1000), 5
            )
        finally:
            canned.terminate()
            canned.wait(timeout=30)
    return {
        "log_batch_metrics_per_s": round(batch_rate),
        "log_metric_per_s": round(single_rate),
        "history_100k_s": round(history, 3),
        "search_filtered_ms": round(searched * 1000, 1),
    }


def write_rates(client: MlflowClient, run: str) -> tuple[float, float]:
    """log_batch (50 calls of 1,000 metrics) and single log_metric (200 calls) rates, after
    one untimed call of each: the first request pays for statement compilation and cold
    caches, which is not the rate being measured."""
    now = int(time.time() * 1000)
    client.log_batch(run, metrics=[Metric("warm", 0.0, now, i) for i in range(1000)])
    client.log_metric(run, "warm-single", 0.0)
    batches = 50  # 1.5 s of work or so: ten batches made the figure swing by a third
    start = time.perf_counter()
    for b in range(batches):
        metrics = [Metric("loss", float(i), now, b * 1000 + i) for i in range(1000)]
        client.log_batch(run, metrics=metrics)
    batch_rate = batches * 1000 / (time.perf_counter() - start)
    singles = 200
    start = time.perf_counter()
    for i in range(singles):
        client.log_metric(run, "single", float(i), step=i)
    return batch_rate, singles / (time.perf_counter() - start)


def raw_write_rates(http: httpx.Client, run: str) -> tuple[float, float]:
    """The same writes as :func:`write_rates` as prebuilt JSON bodies on the raw API (what
    the mlflow client sends: int64s as strings), so the server's part is measured without
    the client's: 50 log-batch calls of 1,000 metrics, 200 log-metric calls."""
    now = str(int(time.time() * 1000))
    headers = {"Content-Type": "application/json"}

    def post(path: str, body: str) -> None:
        answer = http.post(f"/api/2.0/mlflow/runs/{path}", content=body, headers=headers)
        assert answer.status_code == 200, answer.text

    def batch(b: int) -> str:
        metrics = [
            {"key": "raw-loss", "value": float(i), "timestamp": now, "step": str(b * 1000 + i)}
            for i in range(1000)
        ]
        return json.dumps({"run_id": run, "metrics": metrics})

    batches = [batch(b) for b in range(51)]
    singles = [
        json.dumps({"run_id": run, "key": "raw-single", "value": 1.0, "timestamp": now, "step": i})
        for i in range(201)
    ]
    post("log-batch", batches[0])  # untimed, as in write_rates
    post("log-metric", singles[0])
    start = time.perf_counter()
    for body in batches[1:]:
        post("log-batch", body)
    batch_rate = 50 * 1000 / (time.perf_counter() - start)
    start = time.perf_counter()
    for body in singles[1:]:
        post("log-metric", body)
    return batch_rate, 200 / (time.perf_counter() - start)


def measure(url: str, search_runs: int) -> dict[str, Any]:
    client = MlflowClient(url)
    exp = client.create_experiment(f"bench-{time.time_ns()}")
    run = client.create_run(exp).info.run_id
    now = int(time.time() * 1000)

    batch_rate, single_rate = write_rates(client, run)
    with httpx.Client(base_url=url, timeout=120) as http:
        raw_batch_rate, raw_single_rate = raw_write_rates(http, run)

    history_run = client.create_run(exp).info.run_id
    for b in range(100):
        client.log_batch(
            history_run, metrics=[Metric("h", float(i), now, b * 1000 + i) for i in range(1000)]
        )
    history = history_s(client, history_run)
    # The same answer on the raw API (read and JSON-decoded): what the server costs, without
    # the client's protobuf parsing of every point.
    http = httpx.Client(base_url=url, timeout=120)  # closed at the end, after the search

    def raw_history() -> None:
        answer = http.get(
            "/api/2.0/mlflow/metrics/get-history",
            params={"run_id": history_run, "metric_key": "h"},
        ).json()
        assert len(answer["metrics"]) == 100_000

    raw = median_s(raw_history, 5)
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
        found = client.search_runs([search_exp], SEARCH_FILTER, max_results=1000)
        filtered.append(time.perf_counter() - start)
        start = time.perf_counter()
        client.search_runs([search_exp], "", max_results=1000)
        unfiltered.append(time.perf_counter() - start)
    # The filtered search on the raw API (read and JSON-decoded), kept for the client floor.
    body = {
        "experiment_ids": [search_exp],
        "filter": SEARCH_FILTER,
        "max_results": 1000,
        "run_view_type": "ACTIVE_ONLY",
    }
    answers: list[str] = []

    def raw_search() -> None:
        answer = http.post(SEARCH_PATH, json=body)
        assert len(answer.json().get("runs", [])) == len(found)
        answers.append(answer.text)

    raw_search_s = median_s(raw_search, 5)
    http.close()
    return {
        "log_batch_metrics_per_s": round(batch_rate),
        "log_metric_per_s": round(single_rate),
        "log_batch_raw_api_metrics_per_s": round(raw_batch_rate),
        "log_metric_raw_api_per_s": round(raw_single_rate),
        "history_100k_s": round(history, 3),
        "history_100k_raw_api_s": round(raw, 3),
        "history_run": history_run,
        f"search_{search_runs}_filtered_ms": round(statistics.median(filtered) * 1000, 1),
        f"search_{search_runs}_unfiltered_ms": round(statistics.median(unfiltered) * 1000, 1),
        f"search_{search_runs}_filtered_raw_api_ms": round(raw_search_s * 1000, 1),
        "filtered_hits": len(found),
        "search": (search_exp, answers[-1]),
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
            floor = client_floor(info["url"], mill["history_run"], (mill_large or mill)["search"])
        finally:
            stop(settings)
    ratios: dict[str, float] = {}
    if peer:
        for k in (
            "log_batch_metrics_per_s",
            "log_metric_per_s",
            "log_batch_raw_api_metrics_per_s",
            "log_metric_raw_api_per_s",
        ):
            ratios[k] = round(mill[k] / peer[k], 1)
        ratios["history_speedup"] = round(peer["history_100k_s"] / mill["history_100k_s"], 1)
        ratios["history_raw_api_speedup"] = round(
            peer["history_100k_raw_api_s"] / mill["history_100k_raw_api_s"], 1
        )
        key = f"search_{args.peer_runs}_filtered_ms"
        ratios["search_filtered_speedup"] = round(peer[key] / mill[key], 1)
    for figures in (peer, mill, mill_large):
        figures.pop("history_run", None)
        figures.pop("search", None)
    # How near Mill comes to what the client allows: Mill's rate over the floor's rate, and
    # the history's seconds above the floor's (the server's own share, as the user waits).
    ratios["log_batch_of_client_ceiling"] = round(
        mill["log_batch_metrics_per_s"] / floor["log_batch_metrics_per_s"], 2
    )
    ratios["log_metric_of_client_ceiling"] = round(
        mill["log_metric_per_s"] / floor["log_metric_per_s"], 2
    )
    ratios["history_s_above_client_floor"] = round(
        mill["history_100k_s"] - floor["history_100k_s"], 3
    )
    searched = mill_large or mill
    key = next(k for k in searched if k.endswith("_filtered_ms") and "raw" not in k)
    ratios["search_filtered_ms_above_client_floor"] = round(
        searched[key] - floor["search_filtered_ms"], 1
    )
    results = {
        "mlflow_server_sqlite": peer,
        "mill": mill,
        "mill_large": mill_large,
        "mlflow_client_floor": floor,
        "mill_database": "postgresql" if args.mill_database_url else "sqlite",
        "ratios_mill_over_mlflow": ratios,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
