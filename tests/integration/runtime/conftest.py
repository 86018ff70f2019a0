"""A harness for running the real job bootstrap through LocalRunner.

The event receiver is a stdlib ``http.server`` on a free loopback port: it records the
events POSTed to it (checking the bearer token) and serves files for ``download_url``
inputs, so no part of the path between bootstrap and control plane is faked.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mill.compute import LocalRunner, ProcessHandle
from mill.compute.processes import read_stat

TOKEN = "s3cret-token"
EVENTS_PATH = "/api/v1/runtime/jobs/job-1/events"
FINISH_TIMEOUT = 30.0  # generous: "it finished", never a timing assertion


class EventReceiver:
    """Records bootstrap events; serves ``files`` on GET for download inputs."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        self.files: dict[str, bytes] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Authorization") != f"Bearer {receiver.token}":
                    receiver.refused += 1
                    self._answer(401, b'{"code": "unauthorized"}')
                    return
                if self.path != EVENTS_PATH:
                    self._answer(404, b"{}")
                    return
                receiver.events.append(json.loads(body))
                self._answer(200, b'{"ok": true}')

            def do_GET(self) -> None:
                data = receiver.files.get(self.path)
                if data is None:
                    self._answer(404, b"not found")
                else:
                    self._answer(200, data)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events]

    def wait_for(self, status: str, timeout: float = FINISH_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event["status"] == status:
                    return event
            time.sleep(0.02)
        raise AssertionError(f"no {status} event; got {self.statuses()}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    """A loopback port with nothing listening on it (a 'dead' control plane)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def put_blob(blobs_dir: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = blobs_dir / digest[:2] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(0o444)
    return digest


def is_dead(pid: int, timeout: float = 5.0) -> bool:
    """Whether ``pid`` is gone (or a zombie) within ``timeout``: kill() returns before the
    process has actually died, so a check straight after a SIGKILL must allow a moment."""
    deadline = time.monotonic() + timeout
    while True:
        stat = read_stat(pid)
        if stat is None or stat.state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


class Harness:
    """Builds launch plans under ``tmp_path`` and runs them with a real LocalRunner."""

    def __init__(self, tmp_path: Path, receiver: EventReceiver) -> None:
        self.tmp = tmp_path
        self.receiver = receiver
        self.runner = LocalRunner()
        self.handles: list[ProcessHandle] = []
        self.run_dir = tmp_path / "runs" / "job-1"
        self.working_dir = self.run_dir / "wd"
        self.artifacts = tmp_path / "artifacts" / "job-1"
        self.blobs = tmp_path / "blobs"
        self.blobs.mkdir()

    def plan(self, command: str, **overrides: Any) -> dict[str, Any]:
        plan: dict[str, Any] = {
            "version": 1,
            "job_id": "job-1",
            "job_name": "sincere_tail_test",
            "callback": {
                "base_url": self.receiver.url,
                "path": EVENTS_PATH,
                "token": TOKEN,
                "server_file": str(self.tmp / "server.json"),
            },
            "run_dir": str(self.run_dir),
            "working_dir": str(self.working_dir),
            "code": None,
            "inputs": [],
            "outputs": [],
            "artifacts_dir": str(self.artifacts),
            "command": command,
            "shell": "/bin/bash",
            "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"},
            "processes": [{"rank": 0, "env": {}}],
            "timeout_seconds": None,
            "cancel_grace_seconds": 2,
        }
        plan.update(overrides)
        return plan

    def launch(self, plan: dict[str, Any]) -> ProcessHandle:
        handle = self.runner.launch(plan, self.run_dir)
        self.handles.append(handle)
        return handle

    def wait(self, handle: ProcessHandle, timeout: float = FINISH_TIMEOUT) -> float:
        """Wait for the bootstrap to exit; returns how long that took."""
        start = time.monotonic()
        while self.runner.is_alive(handle):
            if time.monotonic() - start > timeout:
                raise AssertionError(f"bootstrap still running after {timeout} s: {self.logs()}")
            time.sleep(0.02)
        return time.monotonic() - start

    def run(self, plan: dict[str, Any]) -> dict[str, Any]:
        """Launch, wait, and return result.json."""
        self.wait(self.launch(plan))
        return self.result()

    def result(self) -> Any:
        return read_json(self.run_dir / "result.json")

    def status(self) -> Any:
        return read_json(self.run_dir / "status.json")

    def std_log(self, name: str = "std_log.txt") -> str:
        path = self.artifacts / "user_logs" / name
        return path.read_text() if path.exists() else ""

    def logs(self) -> str:
        """Everything the bootstrap said, for assertion messages."""
        parts = []
        for path in (self.run_dir / "bootstrap.log", self.artifacts / "system_logs/runtime.txt"):
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text()}")
        return "\n".join(parts)

    def wait_for_file(self, path: Path, timeout: float = FINISH_TIMEOUT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists() and path.read_text().strip():
                return path.read_text().strip()
            time.sleep(0.02)
        raise AssertionError(f"{path} never appeared: {self.logs()}")

    def blob(self, data: bytes) -> str:
        return put_blob(self.blobs, data)

    free_port = staticmethod(free_port)
    is_dead = staticmethod(is_dead)
    read_json = staticmethod(read_json)

    def cleanup(self) -> None:
        for handle in self.handles:
            if self.runner.is_alive(handle):
                self.runner.terminate(handle, grace=1.0)


@pytest.fixture
def receiver() -> Iterator[EventReceiver]:
    server = EventReceiver()
    yield server
    server.close()


@pytest.fixture
def harness(tmp_path: Path, receiver: EventReceiver) -> Iterator[Harness]:
    h = Harness(tmp_path, receiver)
    yield h
    h.cleanup()
