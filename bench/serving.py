"""Online endpoints: Mill's gateway and replicas vs their peers, side by side, one run.

Mill is driven by its real CLI in a fresh MILL_HOME (`mill server start --port 0`); every
request goes over HTTP to the endpoint's `scoring_uri` with the endpoint's primary key. The
load generator is `wrk` (2 threads, 8 connections, a Lua script for the POST body and
headers): a warm-up run, then a measured run with `--latency`.

  mlflow    Mill no-code MLflow deployment (iris logistic regression) vs
            `mlflow models serve --env-manager local` on the same model folder, and the
            in-process cost of one pyfunc / sklearn predict (no HTTP) for scale
  onnx      Mill no-code ONNX deployment (`mill model convert`) vs a bare raw-ASGI app
            (uvicorn, httptools, uvloop, one process) calling ONNX Runtime on the same
            model.onnx, and the same bare app calling scikit-learn
  overhead  Mill code deployment whose run() returns a constant vs a bare ASGI app
            returning the same constant: the gateway's and replica's cost at p50, at 8
            connections and again at 1 (no queueing)
  kill      instance_count 2 under load, `kill -9` of one replica at ~5 s: success rate,
            and whether the replica came back
  rollout   blue/green under load: traffic to green 0 -> 25 -> 50 -> 75 -> 100 % over
            ~15 s, then `online-deployment update` of blue: failed requests

Throughput deployments set max_concurrent_requests_per_instance to 8 (Azure's default is 1).
The peer apps are in bench/serving_peers/. Nothing here asserts on time.

Run: .venv/bin/python bench/serving.py [--quick] [--only NAME[,NAME]] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SCENARIOS = ("mlflow", "onnx", "overhead", "kill", "rollout")
CONNECTIONS, THREADS = 8, 2
CONCURRENCY = 8  # max_concurrent_requests_per_instance for every Mill deployment here
ROW = [5.1, 3.5, 1.4, 0.2]

CONSTANT_SCORE = """\
def init():
    pass


def run(raw_data):
    return {"result": 1}
"""

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
%(headers)s
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d %%d %%d %%.1f %%.1f %%.1f\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
"""


@dataclass
class Load:
    """What one wrk run saw."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int  # wrk's "Non-2xx or 3xx responses" (status >= 400)
    socket_errors: int  # connect + read + write + timeout

    def row(self) -> dict[str, Any]:
        return {
            "rps": round(self.rps),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "requests": self.requests,
            "non_2xx": self.non_2xx,
            "socket_errors": self.socket_errors,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Wrk:
    def __init__(self, scratch: Path, seconds: float, warmup: float) -> None:
        self.scratch, self.seconds, self.warmup = scratch, seconds, warmup
        self.scripts = 0

    def script(self, body: Any, headers: dict[str, str]) -> Path:
        self.scripts += 1
        path = self.scratch / f"wrk-{self.scripts}.lua"
        lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        path.write_text(WRK_SCRIPT % {"body": json.dumps(body), "headers": lines})
        return path

    def start(
        self, url: str, script: Path, seconds: float, connections: int = CONNECTIONS
    ) -> subprocess.Popen[str]:
        threads = min(THREADS, connections)
        command = [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "--latency", "-s", str(script), url,
        ]  # fmt: skip
        return subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    @staticmethod
    def result(proc: subprocess.Popen[str]) -> Load:
        out, _ = proc.communicate()
        match = re.search(r"^WRK_RESULT (.*)$", out, re.M)
        if proc.returncode != 0 or match is None:
            raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
        n, dur, conn, read, write, status, timeout, p50, p99, _mean = match.group(1).split()
        return Load(
            rps=int(n) / (int(dur) / 1e6),
            p50_ms=float(p50) / 1000,
            p99_ms=float(p99) / 1000,
            requests=int(n),
            non_2xx=int(status),
            socket_errors=int(conn) + int(read) + int(write) + int(timeout),
        )

    def measure(
        self, url: str, body: Any, headers: dict[str, str], connections: int = CONNECTIONS
    ) -> Load:
        script = self.script(body, headers)
        self.result(self.start(url, script, self.warmup, connections))
        return self.result(self.start(url, script, self.seconds, connections))


class Mill:
    """The real CLI against one MILL_HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "MILL_HOME": str(home)}

    def cli(self, *args: str, timeout: float = 900, as_json: bool = True) -> Any:
        command = [str(BIN / "mill"), *args, *(["-o", "json"] if as_json else [])]
        done = subprocess.run(
            command, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"$ mill {' '.join(args)}\n{done.stdout}\n{done.stderr}")
        return json.loads(done.stdout) if as_json and done.stdout.strip() else done.stdout

    def endpoint(self, name: str, scratch: Path) -> tuple[str, dict[str, str]]:
        spec = scratch / f"{name}-endpoint.yml"
        spec.write_text(f"name: {name}\nauth_mode: key\n")
        self.cli("online-endpoint", "create", "--file", str(spec))
        uri = self.cli("online-endpoint", "show", "-n", name)["scoring_uri"]
        key = self.cli("online-endpoint", "get-credentials", "-n", name)["primaryKey"]
        return uri, {"Authorization": f"Bearer {key}"}

    def deploy(self, spec: Path, all_traffic: bool = True) -> Any:
        args = ["online-deployment", "create", "--file", str(spec)]
        return self.cli(*args, *(["--all-traffic"] if all_traffic else []))

    def replicas(self, deployment: str, endpoint: str) -> list[dict[str, Any]]:
        shown = self.cli("online-deployment", "show", "-n", deployment, "-e", endpoint)
        return list(shown["replicas"])

    def log_excerpt(self, lines: int = 40) -> str:
        parts = []
        for path in [
            self.home / "logs" / "server.log",
            *sorted(self.home.glob("endpoints/**/*.log")),
        ]:
            if path.is_file():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.relative_to(self.home)}\n" + "\n".join(tail))
        return "\n".join(parts)


def deployment_yaml(scratch: Path, file: str, body: str) -> Path:
    path = scratch / file
    settings = f"request_settings:\n  max_concurrent_requests_per_instance: {CONCURRENCY}\n"
    path.write_text(body + settings)
    return path


class Peer:
    """A peer server in its own process group, started and stopped by this bench only."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=BENCH,
            )  # fmt: skip

    def wait_ready(self, url: str, body: Any, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"peer exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.post(url, json=body, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"peer not ready:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def bare_asgi(module: str, model: str, scratch: Path) -> tuple[Peer, str]:
    port = free_port()
    command = [
        str(BIN / "python"), "-m", "uvicorn", f"serving_peers.{module}:app",
        "--host", "127.0.0.1", "--port", str(port), "--http", "httptools", "--loop", "uvloop",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return Peer(
        command, {"PEER_MODEL": model}, scratch / f"{module}.log"
    ), f"http://127.0.0.1:{port}/"


def measure_peer(peer: Peer, url: str, body: Any, wrk: Wrk, serial: bool = False) -> list[Load]:
    """The peer at 8 connections, and with ``serial`` also at 1 (latency without queueing)."""
    try:
        peer.wait_ready(url, body)
        loads = [wrk.measure(url, body, {})]
        if serial:
            loads.append(wrk.measure(url, body, {}, connections=1))
        return loads
    finally:
        peer.stop()


def mlflow_default_workers() -> str:
    text = subprocess.run(
        [str(BIN / "mlflow"), "models", "serve", "--help"], capture_output=True, text=True
    ).stdout
    match = re.search(r"--workers.*?\(default:\s*([^)]+)\)", text, re.S)
    return match.group(1).strip() if match else "unknown"


def train(folder: Path) -> list[str]:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    signature = infer_signature(x, model.predict(x))
    mlflow.sklearn.save_model(model, str(folder), signature=signature, input_example=x.iloc[:1])
    return list(x.columns)


def in_process_floor(folder: Path, columns: list[str], calls: int = 2000) -> dict[str, float]:
    """Microseconds per 1-row predict with no HTTP at all: what any server pays per request."""
    import warnings

    import mlflow.pyfunc
    import mlflow.sklearn
    import numpy as np
    import pandas as pd

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    pyfunc, estimator = (
        mlflow.pyfunc.load_model(str(folder)),
        mlflow.sklearn.load_model(str(folder)),
    )
    cases = {
        "pyfunc_predict_dataframe_us": lambda: pyfunc.predict(pd.DataFrame([ROW], columns=columns)),
        "sklearn_predict_ndarray_us": lambda: estimator.predict(np.asarray([ROW])),
    }
    floors = {}
    for name, call in cases.items():
        for _ in range(100):
            call()
        started = time.perf_counter()
        for _ in range(calls):
            call()
        floors[name] = round((time.perf_counter() - started) / calls * 1e6, 1)
    return floors


def scenario_mlflow(mill: Mill, ctx: dict[str, Any], wrk: Wrk) -> dict[str, Any]:
    uri, auth = mill.endpoint("bench-mlflow", ctx["scratch"])
    spec = "name: blue\nendpoint_name: bench-mlflow\nmodel: azureml:iris:1\ninstance_count: 1\n"
    started = time.perf_counter()
    mill.deploy(deployment_yaml(ctx["scratch"], "mlflow.yml", spec))
    build_s = time.perf_counter() - started
    split = {"columns": ctx["columns"], "data": [ROW]}
    mill_load = wrk.measure(uri, {"input_data": split}, auth)
    port = free_port()
    command = [
        str(BIN / "mlflow"), "models", "serve", "-m", str(ctx["model"]), "--env-manager", "local",
        "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    # mlflow execs `uvicorn` through bash: the venv's bin must be on PATH.
    path = {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    peer = Peer(command, path, ctx["scratch"] / "mlflow-serve.log")
    url = f"http://127.0.0.1:{port}/invocations"
    [peer_load] = measure_peer(peer, url, {"dataframe_split": split}, wrk)
    return {
        "mill_mlflow": mill_load.row(),
        "mlflow_models_serve": peer_load.row(),
        "mlflow_serve_workers": mlflow_default_workers(),
        "mill_deploy_create_s": round(build_s, 1),
        "in_process_floor": in_process_floor(ctx["model"], ctx["columns"]),
        "ratio_rps_mill_over_mlflow": round(mill_load.rps / peer_load.rps, 1),
    }


def scenario_onnx(mill: Mill, ctx: dict[str, Any], wrk: Wrk) -> dict[str, Any]:
    uri, auth = mill.endpoint("bench-onnx", ctx["scratch"])
    spec = "name: blue\nendpoint_name: bench-onnx\nmodel: azureml:iris:2\ninstance_count: 1\n"
    mill.deploy(deployment_yaml(ctx["scratch"], "onnx.yml", spec))
    body = {"data": [ROW]}
    mill_load = wrk.measure(uri, body, auth)
    peer, url = bare_asgi("onnx_app", str(ctx["onnx_file"]), ctx["scratch"])
    [onnx_load] = measure_peer(peer, url, body, wrk)
    peer, url = bare_asgi("sklearn_app", str(ctx["model"]), ctx["scratch"])
    [sklearn_load] = measure_peer(peer, url, body, wrk)
    return {
        "mill_onnx": mill_load.row(),
        "bare_asgi_onnxruntime": onnx_load.row(),
        "bare_asgi_sklearn": sklearn_load.row(),
        "ratio_rps_mill_over_bare_onnx": round(mill_load.rps / onnx_load.rps, 2),
        "ratio_rps_mill_over_bare_sklearn": round(mill_load.rps / sklearn_load.rps, 2),
    }


def constant_project(scratch: Path) -> Path:
    project = scratch / "constant"
    (project / "code").mkdir(parents=True, exist_ok=True)
    (project / "code" / "score.py").write_text(CONSTANT_SCORE)
    (project / "f.json").write_text("{}\n")
    return project


def scenario_overhead(mill: Mill, ctx: dict[str, Any], wrk: Wrk) -> dict[str, Any]:
    uri, auth = mill.endpoint("bench-const", ctx["scratch"])
    spec = (
        "name: blue\nendpoint_name: bench-const\nmodel:\n  path: f.json\n"
        "code_configuration:\n  code: code\n  scoring_script: score.py\n"
        "environment:\n  conda_file:\n    dependencies: [python=3.11, pip]\ninstance_count: 1\n"
    )
    mill.deploy(deployment_yaml(constant_project(ctx["scratch"]), "const.yml", spec))
    body = {"data": [ROW]}
    mill_load = wrk.measure(uri, body, auth)
    mill_serial = wrk.measure(uri, body, auth, connections=1)
    peer, url = bare_asgi("constant_app", "", ctx["scratch"])
    peer_load, peer_serial = measure_peer(peer, url, body, wrk, serial=True)
    return {
        "mill_code_constant": mill_load.row(),
        "bare_asgi_constant": peer_load.row(),
        "p50_difference_ms": round(mill_load.p50_ms - peer_load.p50_ms, 3),
        "ratio_rps_mill_over_bare": round(mill_load.rps / peer_load.rps, 2),
        # One connection: no queueing, so the p50 gap is the added per-request latency.
        "mill_code_constant_1conn": mill_serial.row(),
        "bare_asgi_constant_1conn": peer_serial.row(),
        "p50_difference_1conn_ms": round(mill_serial.p50_ms - peer_serial.p50_ms, 3),
    }


def success_rate(load: Load) -> float:
    attempts = load.requests + load.socket_errors
    return (load.requests - load.non_2xx) / attempts if attempts else 0.0


def scenario_kill(mill: Mill, ctx: dict[str, Any], wrk: Wrk) -> dict[str, Any]:
    uri, auth = mill.endpoint("bench-kill", ctx["scratch"])
    spec = "name: blue\nendpoint_name: bench-kill\nmodel: azureml:iris:1\ninstance_count: 2\n"
    mill.deploy(deployment_yaml(ctx["scratch"], "kill.yml", spec))
    body = {"input_data": {"columns": ctx["columns"], "data": [ROW]}}
    script = wrk.script(body, auth)
    wrk.result(wrk.start(uri, script, wrk.warmup))
    seconds, kill_at = (8, 2.0) if ctx["quick"] else (20, 5.0)
    proc = wrk.start(uri, script, seconds)
    started = time.monotonic()
    time.sleep(kill_at)
    victim = mill.replicas("blue", "bench-kill")[0]
    os.kill(int(victim["pid"]), signal.SIGKILL)
    killed = time.monotonic()
    back_after = None
    while back_after is None and time.monotonic() - killed < 120:
        time.sleep(1.0)
        now = {r["index"]: r for r in mill.replicas("blue", "bench-kill")}
        again = now.get(victim["index"], {})
        if again.get("state") == "ready" and again.get("pid") != victim["pid"]:
            back_after = time.monotonic() - killed
    load = wrk.result(proc)
    final = mill.replicas("blue", "bench-kill")
    return {
        "kill_load": load.row(),
        "kill_at_s": round(killed - started, 1),
        "success_rate_pct": round(100 * success_rate(load), 4),
        "failed": load.non_2xx + load.socket_errors,
        "replica_back_after_s": None if back_after is None else round(back_after, 1),
        "replicas_after": [
            {k: r.get(k) for k in ("index", "state", "pid", "restarts")} for r in final
        ],
    }


def scenario_rollout(mill: Mill, ctx: dict[str, Any], wrk: Wrk) -> dict[str, Any]:
    scratch = ctx["scratch"]
    uri, auth = mill.endpoint("bench-roll", scratch)
    specs = {}
    for name in ("blue", "green"):
        spec = (
            f"name: {name}\nendpoint_name: bench-roll\nmodel: azureml:iris:2\ninstance_count: 1\n"
        )
        specs[name] = deployment_yaml(scratch, f"roll-{name}.yml", spec)
        mill.deploy(specs[name], all_traffic=False)
    mill.cli("online-endpoint", "update", "-n", "bench-roll", "--traffic", "blue=100 green=0")
    blue_v2 = deployment_yaml(
        scratch,
        "roll-blue-v2.yml",
        "name: blue\nendpoint_name: bench-roll\nmodel: azureml:iris:2\ninstance_count: 1\n"
        "environment_variables:\n  ROLLOUT: '2'\n",
    )
    script = wrk.script({"data": [ROW]}, auth)
    wrk.result(wrk.start(uri, script, wrk.warmup))
    step = 1.0 if ctx["quick"] else 3.75
    seconds = 15 if ctx["quick"] else 30
    proc = wrk.start(uri, script, seconds)
    started = time.monotonic()
    events = []
    for i, green in enumerate((25, 50, 75, 100), start=1):
        time.sleep(max(0.0, started + i * step - time.monotonic()))
        traffic = f"blue={100 - green} green={green}"
        mill.cli("online-endpoint", "update", "-n", "bench-roll", "--traffic", traffic)
        events.append((round(time.monotonic() - started, 1), traffic))
    time.sleep(max(0.0, started + 4 * step + 1 - time.monotonic()))
    at = time.monotonic() - started
    mill.cli("online-deployment", "update", "--file", str(blue_v2))
    events.append((round(at, 1), f"blue update until {time.monotonic() - started:.1f} s"))
    load = wrk.result(proc)
    return {
        "rollout_load": load.row(),
        "rollout_events_s": events,
        "failed": load.non_2xx + load.socket_errors,
        "wrk_seconds": seconds,
    }


RUNNERS = {
    "mlflow": scenario_mlflow,
    "onnx": scenario_onnx,
    "overhead": scenario_overhead,
    "kill": scenario_kill,
    "rollout": scenario_rollout,
}


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'target':34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'sock err':>8}"
    ]
    for part in results.values():
        for name, row in part.items():
            if isinstance(row, dict) and "rps" in row:
                lines.append(
                    f"{name:34} {row['rps']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} "
                    f"{row['non_2xx']:>8} {row['socket_errors']:>8}"
                )
    return "\n".join(lines)


def verdicts(results: dict[str, Any]) -> list[str]:
    out = []

    def line(ok: bool, text: str) -> None:
        out.append(f"[{'met' if ok else 'NOT met'}] {text}")

    if "rps" in json.dumps(results.get("mlflow", {})):
        r = results["mlflow"]["ratio_rps_mill_over_mlflow"]
        line(r >= 10, f"MLflow: Mill / mlflow models serve = {r}x (target >= 10x)")
    if "ratio_rps_mill_over_bare_onnx" in results.get("onnx", {}):
        r = results["onnx"]["ratio_rps_mill_over_bare_onnx"]
        line(r >= 0.5, f"ONNX: Mill / bare ASGI ORT = {r:.0%} (target >= 50%)")
    if "p50_difference_ms" in results.get("overhead", {}):
        d = results["overhead"]["p50_difference_ms"]
        line(d <= 0.5, f"gateway p50 overhead, 8 connections = {d} ms (target <= 0.5 ms)")
        d1 = results["overhead"]["p50_difference_1conn_ms"]
        line(d1 <= 0.5, f"gateway p50 overhead, 1 connection = {d1} ms (target <= 0.5 ms)")
    if "success_rate_pct" in results.get("kill", {}):
        k = results["kill"]
        line(k["success_rate_pct"] >= 99.9, f"kill -9: {k['success_rate_pct']}% ok (>= 99.9%)")
        restarted = [r for r in k["replicas_after"] if r["restarts"] == 1 and r["state"] == "ready"]
        line(bool(restarted), f"killed replica back: {k['replicas_after']}")
    if "failed" in results.get("rollout", {}):
        f = results["rollout"]["failed"]
        line(f == 0, f"blue/green rollout: {f} failed requests (target 0)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 s runs: a smoke check")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=",".join(SCENARIOS))
    parser.add_argument("--home", type=Path, help="keep MILL_HOME (and logs) here")
    args = parser.parse_args()
    chosen = [s for s in args.only.split(",") if s]
    if unknown := set(chosen) - set(SCENARIOS):
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {SCENARIOS}")
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install -y wrk): no load generator, no figures.")
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        home = args.home or scratch / "home"
        mill = Mill(home)
        wrk = Wrk(scratch, seconds=3 if args.quick else 10, warmup=1 if args.quick else 2)
        ctx: dict[str, Any] = {"scratch": scratch, "model": scratch / "iris", "quick": args.quick}
        ctx["columns"] = train(ctx["model"])
        results: dict[str, Any] = {}
        problems: list[str] = []
        mill.cli("server", "start", "--port", "0")
        try:
            mill.cli("model", "create", "--name", "iris", "--type", "mlflow_model",
                     "--path", str(ctx["model"]))  # fmt: skip
            mill.cli("model", "convert", "--name", "iris", "--version", "1", "--to", "onnx")
            onnx_dir = scratch / "onnx"
            mill.cli("model", "download", "--name", "iris", "--version", "2",
                     "--download-path", str(onnx_dir), as_json=False)  # fmt: skip
            ctx["onnx_file"] = next(onnx_dir.rglob("model.onnx"))
            for name in chosen:
                print(f"== {name}", flush=True)
                try:
                    results[name] = RUNNERS[name](mill, ctx, wrk)
                except Exception as exc:  # recorded, the other scenarios still run
                    problems.append(f"{name}: {exc}\nMill's logs:\n{mill.log_excerpt()}")
                    print(f"!! {name} failed: {exc}", flush=True)
                print(json.dumps(results.get(name), indent=2), flush=True)
        finally:
            mill.cli("server", "stop", as_json=False)
    note = (
        f"wrk {THREADS} threads, {CONNECTIONS} connections, {wrk.seconds} s after {wrk.warmup} s "
        f"warm-up; {os.cpu_count()} CPUs shared by wrk, the servers and the replicas; Mill "
        f"deployments max_concurrent_requests_per_instance={CONCURRENCY}"
    )
    print(f"\n{note}\n\n{table(results)}\n")
    print("\n".join(verdicts(results)))
    for problem in problems:
        print(f"\nscenario failed: {problem}")


if __name__ == "__main__":
    main()
