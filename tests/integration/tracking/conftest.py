"""A real HTTP server (uvicorn on a loopback port) with the tracking routers, per test."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from mill.compute.local import LocalRunner
from mill.config import Settings
from mill.server.app import create_app
from mill.services.context import Context
from mill.store import SqlStore


@dataclass
class Server:
    url: str
    ctx: Context


@pytest.fixture
def server(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    ctx = Context(settings=settings, store=SqlStore(db_url), runner=LocalRunner())
    app = create_app(ctx, run_loops=False)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", ctx)
    finally:
        import mlflow
        import mlflow.tracking.fluent

        while mlflow.active_run() is not None:
            mlflow.end_run()
        # set_experiment() remembers an id in the client's globals; the next server lacks it.
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
        uv.should_exit = True
        thread.join(timeout=10)
        sock.close()
        ctx.store.dispose()
