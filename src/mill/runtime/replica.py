"""One replica of an online deployment: loads the model once, then scores requests.

Runs in the deployment's environment as ``python -m <runtime package>.replica <plan.json>``
(see ``mill.serving.replicas``), so it imports nothing outside the standard library and its
own package until the deployment's handler loads the user's script or model.

The plan (JSON, written by the control plane)::

    {"kind": "code" | "mlflow" | "onnx" | "triton", "name": "<endpoint>/<deployment>/<n>",
     "host": "127.0.0.1", "port_file": "...", "max_concurrent": 1,
     "code_dir": "...", "scoring_script": "score.py",        # code deployments
     "model_path": "..."}                                     # the model file or folder

The gateway's token is in ``MILL_REPLICA_TOKEN`` (removed from the environment before any
user code runs). The replica binds a free loopback port, writes ``{"port", "pid"}`` to
``port_file``, then runs ``init()`` in a thread; until it has finished, health checks answer
503 (starting). If ``init()`` raises, the traceback goes to the log and the process exits
with status 3, which the supervisor reports as the deployment's failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .scoring_handlers import Handler, Request, Response, load_handler
from .scoring_protocol import HELLO, REQUEST, RESPONSE, FrameParser, ProtocolError, encode

__all__ = ["INIT_FAILED", "main"]

INIT_FAILED = 3
_MAX_BODY = 1 << 31
_HEALTH_PATHS = ("/", "/health", "/healthz")


@dataclass
class _State:
    token: bytes
    pool: ThreadPoolExecutor
    handler: Handler | None = None
    ready: bool = False
    failed: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Connection(asyncio.Protocol):
    """One gateway connection: frames in, frames out; each request answered when done."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.parser = FrameParser(_MAX_BODY)
        self.greeted = False
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        try:
            frames = self.parser.feed(data)
        except ProtocolError:
            self.transport.close()
            return
        for kind, request_id, meta, body in frames:
            if not self.greeted:
                token = str(meta.get("token", "")).encode()
                if kind != HELLO or not _same(token, self.state.token):
                    self.transport.close()
                    return
                self.greeted = True
                self.transport.write(encode(HELLO, request_id, {"pid": os.getpid()}))
            elif kind == REQUEST:
                self._dispatch(request_id, meta, body)

    def _dispatch(self, request_id: int, meta: dict[str, Any], body: bytes) -> None:
        request = Request(
            method=str(meta.get("method", "POST")).upper(),
            path=str(meta.get("path", "/score")),
            query=str(meta.get("query", "")),
            headers={str(k).lower(): str(v) for k, v in (meta.get("headers") or {}).items()},
            body=body,
        )
        if request.path in _HEALTH_PATHS and request.method == "GET":
            self._send(request_id, self._health())
            return
        future = self.loop.run_in_executor(self.state.pool, _answer, self.state, request)
        future.add_done_callback(lambda f: self._send(request_id, f.result()))

    def _health(self) -> Response:
        state = self.state
        if state.ready:
            return Response(200, {"content-type": "text/plain"}, b"Healthy")
        text = "init() failed" if state.failed else "starting: init() has not finished"
        return Response(503, {"content-type": "text/plain"}, text.encode())

    def _send(self, request_id: int, response: Response) -> None:
        if self.transport is not None and not self.transport.is_closing():
            meta = {"status": response.status, "headers": response.headers}
            self.transport.write(encode(RESPONSE, request_id, meta, response.body))


def _answer(state: _State, request: Request) -> Response:
    """Run on a pool thread: the handler's answer, or a 500 naming the error."""
    if not state.ready or state.handler is None:
        return _json_error(503, "the replica is starting: init() has not finished")
    try:
        return state.handler.handle(request)
    except Exception as exc:  # the user's run() failed: answer 500, keep the trace in the log
        traceback.print_exc()
        return _json_error(500, f"{type(exc).__name__}: {exc}")


def _json_error(status: int, message: str) -> Response:
    body = json.dumps({"error": message}).encode()
    return Response(status, {"content-type": "application/json"}, body)


def _same(given: bytes, expected: bytes) -> bool:
    import hmac

    return hmac.compare_digest(given, expected)


def _initialise(state: _State, plan: dict[str, Any]) -> None:
    try:
        handler = load_handler(plan)
        handler.init()
    except BaseException:
        print(f"init() failed in replica {plan.get('name', '')}:", file=sys.stderr)
        traceback.print_exc()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(INIT_FAILED)
    state.handler = handler
    state.ready = True
    print(f"replica {plan.get('name', '')} is ready (pid {os.getpid()})", flush=True)


async def _serve(plan: dict[str, Any], state: _State) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(state), host=plan.get("host", "127.0.0.1"), port=0
    )
    port = server.sockets[0].getsockname()[1]
    _write_json_atomic(plan["port_file"], {"port": port, "pid": os.getpid()})
    threading.Thread(target=_initialise, args=(state, plan), daemon=True).start()
    async with server:
        await server.serve_forever()


def _write_json_atomic(path: str, data: dict[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    with open(args[0], encoding="utf-8") as f:
        plan: dict[str, Any] = json.load(f)
    token = os.environ.pop("MILL_REPLICA_TOKEN", "").encode()
    workers = max(1, int(plan.get("max_concurrent", 1)))
    state = _State(token=token, pool=ThreadPoolExecutor(workers, thread_name_prefix="score"))
    try:
        asyncio.run(_serve(plan, state))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
