"""Environment builds: Mill (uv, cached by key) vs `python -m venv` + `pip install`, one run.

Measures, for the curated sklearn-1.5 requirement set:
  * a cold build with Mill's builder (a fresh uv cache: every package downloaded);
  * the same set with `python -m venv` + `pip install` (no pip cache), the usual way;
  * a cache hit (what a job pays when its environment is already built);
  * job start with that cached environment vs with no environment (server warm).

Run: .venv/bin/python bench/env_build.py [--runs 10]
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

from mill import envs
from mill.client.http import MillClient
from mill.config import Settings
from mill.server.process import start_background, stop

USER_CODE = "import sys, time; open(sys.argv[1], 'w').write(repr(time.time()))"


def mill_cold(root: Path, resolved: envs.ResolvedEnvironment) -> float:
    os.environ["UV_CACHE_DIR"] = str(root / "uv-cache")  # cold: nothing downloaded yet
    try:
        built = envs.UvEnvironmentBuilder(root / "envs").build(resolved, log=lambda _line: None)
    finally:
        del os.environ["UV_CACHE_DIR"]
    assert not built.cache_hit
    return built.seconds


def pip_cold(root: Path, requirements: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(root / "pip-venv")], check=True)
    env = dict(os.environ, PIP_NO_CACHE_DIR="1")
    subprocess.run(
        [str(root / "pip-venv/bin/pip"), "install", "-q", *requirements], check=True, env=env
    )
    return time.perf_counter() - start


def cache_hits(root: Path, resolved: envs.ResolvedEnvironment, runs: int) -> list[float]:
    builder = envs.UvEnvironmentBuilder(root / "envs")
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        assert builder.build(resolved, log=lambda _line: None).cache_hit
        samples.append(time.perf_counter() - start)
    return samples


def wait_for(path: Path, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text := path.read_text():
                return float(text)
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.001)
    raise TimeoutError(path)


def job_starts(client: MillClient, marks: Path, environment: str | None, runs: int) -> list[float]:
    samples = []
    for i in range(runs + 1):
        mark = marks / f"{environment is not None}-{i}"
        spec = {"command": f'python -c "{USER_CODE}" {mark}', "experiment_name": "bench-env"}
        if environment:
            spec["environment"] = environment
        job = client.create_job(spec)
        returned = time.time()
        started = wait_for(mark)
        if i:  # the first run warms up (and, with an environment, makes sure it is built)
            samples.append(started - returned)
        while client.show_job(job["name"])["status"] not in ("Completed", "Failed", "Canceled"):
            time.sleep(0.01)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    curated = "azureml:AzureML-sklearn-1.5@latest"
    resolved = envs.resolve(envs.EnvironmentDefinition(curated=envs.curated_name(curated)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mill_seconds = mill_cold(root, resolved)
        pip_seconds = pip_cold(root, list(resolved.requirements))
        hits = cache_hits(root, resolved, args.runs)
        settings = Settings.from_env(
            {"MILL_HOME": str(root / "home"), "MILL_ENVS_DIR": str(root / "envs")}
        )
        info = start_background(settings, "127.0.0.1", 0)
        client = MillClient(info["url"])
        marks = root / "marks"
        marks.mkdir()
        try:
            bare = job_starts(client, marks, None, args.runs)
            with_env = job_starts(client, marks, curated, args.runs)
        finally:
            client.close()
            stop(settings)
    ms = lambda values: round(statistics.median(values) * 1000, 1)  # noqa: E731
    results = {
        "requirements": len(resolved.requirements),
        "mill_uv_cold_build_s": round(mill_seconds, 2),
        "venv_pip_cold_build_s": round(pip_seconds, 2),
        "speedup": round(pip_seconds / mill_seconds, 1),
        "cache_hit_ms": ms(hits),
        "job_first_line_no_env_ms": ms(bare),
        "job_first_line_cached_env_ms": ms(with_env),
        "cached_env_added_ms": round(ms(with_env) - ms(bare), 1),
    }
    print(json.dumps(results, indent=2))
    print(
        f"\ncold build of sklearn-1.5 ({results['requirements']} requirements): Mill "
        f"{results['mill_uv_cold_build_s']} s vs venv+pip {results['venv_pip_cold_build_s']} s "
        f"-> {results['speedup']}x (target >= 3x)\n"
        f"cache hit: {results['cache_hit_ms']} ms; job start with a cached environment adds "
        f"{results['cached_env_added_ms']} ms (target <= 50 ms)"
    )


if __name__ == "__main__":
    main()
