"""Job start overhead: Mill vs a plain subprocess launch of the same command, in one run.

Measures, for a trivial job whose first line of user code records time.time():
  * subprocess floor: Popen(python -c ...) -> first line of user code;
  * Mill: `job create` returning (the HTTP call the CLI makes) -> first line of user code,
    with the server warm (same home, same compute);
  * the CLI's own start-up: `mill --version` wall time, against `python -c pass`;
  * queueing: 20 jobs submitted at once to a local compute limited to 2 -> all complete.

Run: .venv/bin/python bench/job_start.py [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mill.client.http import MillClient
from mill.config import Settings
from mill.server.process import start_background, stop

USER_CODE = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time()))"


def wait_for(path: Path, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            text = path.read_text()
            if text:
                return float(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.001)
    raise TimeoutError(path)


def subprocess_floor(marks: Path, runs: int) -> list[float]:
    samples = []
    for i in range(runs):
        mark = marks / f"sub-{i}"
        before = time.time()
        proc = subprocess.Popen([sys.executable, "-c", USER_CODE, str(mark)])
        samples.append(wait_for(mark) - before)
        proc.wait()
    return samples


def mill_start(client: MillClient, marks: Path, runs: int) -> tuple[list[float], list[float]]:
    overhead, create_call = [], []
    for i in range(runs):
        mark = marks / f"mill-{i}"
        spec = {"command": f'python -c "{USER_CODE}" {mark}', "experiment_name": "bench"}
        before = time.time()
        job = client.create_job(spec)
        returned = time.time()
        create_call.append(returned - before)
        overhead.append(wait_for(mark) - returned)
        while client.show_job(job["name"])["status"] not in ("Completed", "Failed", "Canceled"):
            time.sleep(0.01)
    return overhead, create_call


def cli_startup(runs: int) -> tuple[list[float], list[float]]:
    mill_bin = str(Path(sys.executable).with_name("mill"))
    mill, python = [], []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([mill_bin, "--version"], check=True, capture_output=True)
        mill.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        python.append(time.perf_counter() - t)
    return mill, python


def queue_twenty(client: MillClient) -> tuple[float, int]:
    client.create_compute({"name": "bench-two", "type": "local", "max_instances": 2})
    spec = {"command": "python -c pass", "compute": "bench-two", "experiment_name": "bench-queue"}
    start = time.perf_counter()
    names = [client.create_job(spec)["name"] for _ in range(20)]
    done = 0
    while done < len(names):
        jobs = client.list_jobs(experiment_name="bench-queue", max_results=100)
        done = sum(1 for j in jobs if j["status"] == "Completed")
        if any(j["status"] in ("Failed", "Canceled") for j in jobs):
            raise RuntimeError("a queued job did not complete")
        time.sleep(0.02)
    return time.perf_counter() - start, done


def ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        settings = Settings.from_env({"MILL_HOME": str(home)})
        info = start_background(settings, "127.0.0.1", 0)
        client = MillClient(info["url"])
        marks = Path(tmp) / "marks"
        marks.mkdir()
        try:
            mill_start(client, marks, 3)  # warm the server: first requests, imports
            floor = subprocess_floor(marks, args.runs)
            overhead, create_call = mill_start(client, marks, args.runs)
            cli_mill, cli_python = cli_startup(args.runs)
            queue_seconds, completed = queue_twenty(client)
        finally:
            client.close()
            stop(settings)
    results = {
        "runs": args.runs,
        "subprocess_first_line_ms": round(ms(floor), 1),
        "mill_first_line_after_create_ms": round(ms(overhead), 1),
        "mill_overhead_above_floor_ms": round(ms(overhead) - ms(floor), 1),
        "ratio_mill_to_subprocess": round(ms(overhead) / ms(floor), 2),
        "job_create_call_ms": round(ms(create_call), 1),
        "cli_version_ms": round(ms(cli_mill), 1),
        "python_startup_ms": round(ms(cli_python), 1),
        "twenty_jobs_two_slots_seconds": round(queue_seconds, 2),
        "twenty_jobs_completed": completed,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(results, indent=2))
    print(
        "\njob start: Mill "
        f"{results['mill_first_line_after_create_ms']} ms after create returns vs "
        f"subprocess {results['subprocess_first_line_ms']} ms -> overhead "
        f"{results['mill_overhead_above_floor_ms']} ms above the floor (target <= 150 ms)\n"
        f"CLI start-up: mill --version {results['cli_version_ms']} ms vs python -c pass "
        f"{results['python_startup_ms']} ms (target <= 250 ms)\n"
        f"queue: 20 jobs on a 2-slot compute, {completed} completed in "
        f"{results['twenty_jobs_two_slots_seconds']} s"
    )


if __name__ == "__main__":
    main()
