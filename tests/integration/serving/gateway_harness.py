"""Real parts for the gateway tests: replica subprocesses serving a score.py written in
tmp_path, and a GatewayServer on a free loopback port."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from mill.serving.gateway import (
    DeploymentRoute,
    EndpointRoute,
    Gateway,
    GatewayServer,
    ReplicaAddress,
)
from mill.serving.upstream import probe_sync

START_TIMEOUT = 30.0  # generous: "it started", never a timing assertion

SCORE_PY = """
import json, os, time

def init():
    pass

def run(raw_data):
    data = json.loads(raw_data) if raw_data else {{}}
    if {mark!r}:
        with open({mark!r}, "a") as out:
            out.write("x\\n")
    if data.get("sleep"):
        time.sleep(float(data["sleep"]))
    if data.get("fail"):
        raise ValueError("asked to fail")
    return {{"deployment": {name!r}, "pid": os.getpid(), "echo": data}}
"""


class ReplicaProcess:
    """A real ``python -m mill.runtime.replica`` serving a generated score.py."""

    def __init__(self, folder: Path, name: str, mark: str = "", max_concurrent: int = 1) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        code = folder / "code"
        code.mkdir(exist_ok=True)
        (code / "score.py").write_text(SCORE_PY.format(name=name, mark=mark))
        port_file = folder / "port.json"
        port_file.unlink(missing_ok=True)
        plan = {
            "kind": "code",
            "name": name,
            "host": "127.0.0.1",
            "port_file": str(port_file),
            "code_dir": str(code),
            "scoring_script": "score.py",
            "max_concurrent": max_concurrent,
        }
        (folder / "plan.json").write_text(json.dumps(plan))
        token = secrets.token_urlsafe(16)
        env = {**os.environ, "MILL_REPLICA_TOKEN": token}
        self.log = (folder / "replica.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mill.runtime.replica", str(folder / "plan.json")],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not port_file.exists():
            assert self.process.poll() is None, (folder / "replica.log").read_text()
            assert time.monotonic() < deadline, "replica did not write its port file"
            time.sleep(0.02)
        port = json.loads(port_file.read_text())["port"]
        self.address = ReplicaAddress(id=name, host="127.0.0.1", port=port, token=token)
        while probe_sync(self.address, 2.0) != 200:
            assert self.process.poll() is None, (folder / "replica.log").read_text()
            assert time.monotonic() < deadline, "replica did not become ready"
            time.sleep(0.02)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        self.kill()
        self.log.close()


@contextmanager
def replicas(tmp_path: Path, *specs: tuple[str, str]) -> Iterator[list[ReplicaProcess]]:
    """Start one replica per ``(name, mark_file)``; kill them all afterwards."""
    started: list[ReplicaProcess] = []
    try:
        for name, mark in specs:
            started.append(ReplicaProcess(tmp_path / f"replica-{name}", name, mark))
        yield started
    finally:
        for replica in started:
            replica.close()


@contextmanager
def serving(gateway: Gateway, **kwargs: str) -> Iterator[GatewayServer]:
    server = GatewayServer(gateway, "127.0.0.1", 0, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def endpoint(
    name: str,
    deployments: Mapping[str, DeploymentRoute],
    traffic: Mapping[str, int] | None = None,
    *,
    keys: tuple[str, ...] = ("primary-key", "secondary-key"),
    auth_mode: str = "key",
    secret: bytes = b"endpoint-secret",
    mirror: Mapping[str, int] | None = None,
) -> EndpointRoute:
    return EndpointRoute(
        name=name,
        auth_mode=auth_mode,
        keys=keys,
        token_secret=secret,
        traffic=dict(traffic if traffic is not None else {d: 100 for d in deployments}),
        mirror_traffic=dict(mirror or {}),
        deployments=dict(deployments),
    )


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


AUTH = {"Authorization": "Bearer primary-key"}
