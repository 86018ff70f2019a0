"""Start a real replica process and talk to it over the gateway's framed protocol.

``start_replica(tmp_path, plan)`` writes the plan, starts ``python -m mill.runtime.replica``
with a token, waits for its port file and connects (HELLO). ``ReplicaClient.call`` sends one
REQUEST frame and reads its RESPONSE. ``wait_ready`` polls ``GET /`` until init() finished.
The process is killed by ``stop()`` (the ``replica`` fixtures call it at teardown).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mill.runtime.scoring_protocol import HELLO, REQUEST, RESPONSE, FrameParser, encode

TOKEN = "replica-test-token"
START_TIMEOUT = 60.0  # generous: "it started", never a timing assertion


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ReplicaClient:
    process: subprocess.Popen[bytes]
    log: Path
    port: int = 0
    sock: socket.socket | None = None
    parser: FrameParser = field(default_factory=lambda: FrameParser(1 << 30))
    next_id: int = 1

    def connect(self, token: str = TOKEN) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=START_TIMEOUT)
        self.sock.sendall(encode(HELLO, 0, {"token": token}))
        kind, _, meta, _ = self._read_frame()
        assert kind == HELLO, f"expected HELLO, got frame kind {kind}"
        assert meta["pid"] == self.process.pid

    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        headers: dict[str, str] | None = None,
        query: str = "",
    ) -> Answer:
        assert self.sock is not None
        sent_headers = dict(headers or {})
        if isinstance(body, dict | list):
            body = json.dumps(body)
            sent_headers.setdefault("content-type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        request_id, self.next_id = self.next_id, self.next_id + 1
        meta = {"method": method, "path": path, "query": query, "headers": sent_headers}
        self.sock.sendall(encode(REQUEST, request_id, meta, body))
        kind, answered, meta, data = self._read_frame()
        assert (kind, answered) == (RESPONSE, request_id)
        return Answer(int(meta["status"]), dict(meta.get("headers") or {}), data)

    def post(self, path: str, body: Any, **kwargs: Any) -> Answer:
        return self.call("POST", path, body, **kwargs)

    def get(self, path: str, query: str = "") -> Answer:
        return self.call("GET", path, query=query)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds from now until ``GET /`` answered 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"replica exited {self.process.returncode}: {self.text()}")
            if self.get("/").status == 200:
                return time.monotonic() - started
            time.sleep(0.02)
        raise AssertionError(f"replica not ready after {timeout}s: {self.text()}")

    def _read_frame(self) -> tuple[int, int, dict[str, Any], bytes]:
        assert self.sock is not None
        while True:
            frames = self.parser.feed(self._recv())
            if frames:
                assert len(frames) == 1, "one answer per request in these tests"
                return frames[0]

    def _recv(self) -> bytes:
        assert self.sock is not None
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError(f"replica closed the connection: {self.text()}")
        return data

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


def start_replica(
    tmp_path: Path, plan: dict[str, Any], env: dict[str, str] | None = None, connect: bool = True
) -> ReplicaClient:
    """A started replica, connected, but maybe still in init() (see ``wait_ready``)."""
    plan = {
        "name": "ep/dep/0",
        "host": "127.0.0.1",
        "port_file": str(tmp_path / "port.json"),
        **plan,
    }
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    log = tmp_path / "replica.log"
    environment = {**os.environ, **(env or {}), "MILL_REPLICA_TOKEN": TOKEN}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mill.runtime.replica", str(plan_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=tmp_path,
        )
    client = ReplicaClient(process, log)
    port_file = Path(plan["port_file"])
    deadline = time.monotonic() + START_TIMEOUT
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            client.stop()
            raise AssertionError(f"replica wrote no port file: {client.text()}")
        time.sleep(0.01)
    client.port = int(json.loads(port_file.read_text())["port"])
    if connect:
        client.connect()
    return client
