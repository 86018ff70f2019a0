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

Serving is plain blocking sockets and threads: one thread per connection reads frames. When
a request may run on that thread (``max_concurrent`` 1, or a no-code handler that says its
work is short: ``inline = True``), the frames of one read are answered in order and their
answers go back in one write; otherwise requests go to ``max_concurrent`` worker threads
that answer under the connection's write lock. Health checks are answered on the reading
thread, so a long ``run()`` never holds one up (the supervisor probes on connections of its
own).
"""

from __future__ import annotations

import hmac
import json
import os
import queue
import socket
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any

from .bootstrap import write_json_atomic
from .scoring_handlers import Handler, Request, Response, load_handler
from .scoring_protocol import HELLO, REQUEST, RESPONSE, FrameParser, ProtocolError, encode

__all__ = ["INIT_FAILED", "main"]

INIT_FAILED = 3
_MAX_BODY = 1 << 31
_READ_SIZE = 1 << 18
_HEALTH_PATHS = ("/", "/health", "/healthz")
_READY = Response(200, {"content-type": "text/plain"}, b"Healthy")


@dataclass
class _State:
    token: bytes
    workers: int
    handler: Handler | None = None
    ready: bool = False
    inline: bool = False  # answer on the reading thread (set once init() has finished)
    work: queue.SimpleQueue[Any] | None = None


class _Connection:
    """One gateway (or probe) connection."""

    def __init__(self, state: _State, sock: socket.socket) -> None:
        self.state = state
        self.sock = sock
        self.write_lock = threading.Lock()

    def serve(self) -> None:
        sock, state = self.sock, self.state
        parser = FrameParser(_MAX_BODY)
        greeted = False
        try:
            while data := sock.recv(_READ_SIZE):
                out: list[bytes] = []
                for kind, request_id, meta, body in parser.feed(data):
                    if not greeted:
                        token = str(meta.get("token", "")).encode()
                        if kind != HELLO or not hmac.compare_digest(token, state.token):
                            return
                        greeted = True
                        out.append(encode(HELLO, request_id, {"pid": os.getpid()}))
                    elif kind == REQUEST:
                        request = _request(meta, body)
                        if request.method == "GET" and request.path in _HEALTH_PATHS:
                            out.append(_frame(request_id, _health(state)))
                        elif state.inline or state.work is None:
                            out.append(_frame(request_id, _answer(state, request)))
                        else:
                            state.work.put((self, request_id, request))
                if out:
                    self.send(b"".join(out))
        except (OSError, ProtocolError):
            pass
        finally:
            sock.close()

    def send(self, data: bytes) -> None:
        with self.write_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the gateway went away; it retries elsewhere


def _request(meta: dict[str, Any], body: bytes) -> Request:
    headers = meta.get("headers") or {}
    return Request(
        method=str(meta.get("method", "POST")).upper(),
        path=str(meta.get("path", "/score")),
        query=str(meta.get("query", "")),
        headers={str(k).lower(): str(v) for k, v in headers.items()} if headers else {},
        body=body,
    )


def _frame(request_id: int, response: Response) -> bytes:
    meta = {"status": response.status, "headers": response.headers}
    return encode(RESPONSE, request_id, meta, response.body)


def _health(state: _State) -> Response:
    if state.ready:
        return _READY
    return Response(503, {"content-type": "text/plain"}, b"starting: init() has not finished")


def _answer(state: _State, request: Request) -> Response:
    """The handler's answer, or a 500 naming the error (its traceback goes to the log)."""
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


def _worker(state: _State) -> None:
    assert state.work is not None
    while True:
        connection, request_id, request = state.work.get()
        connection.send(_frame(request_id, _answer(state, request)))


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
    state.inline = state.workers == 1 or bool(getattr(handler, "inline", False))
    if not state.inline:
        state.work = queue.SimpleQueue()
        for n in range(state.workers):
            threading.Thread(target=_worker, args=(state,), name=f"score-{n}", daemon=True).start()
    state.ready = True
    print(f"replica {plan.get('name', '')} is ready (pid {os.getpid()})", flush=True)


def _serve(plan: dict[str, Any], state: _State) -> None:
    listener = socket.create_server((plan.get("host", "127.0.0.1"), 0), backlog=128)
    port = listener.getsockname()[1]
    write_json_atomic(plan["port_file"], {"port": port, "pid": os.getpid()})
    threading.Thread(target=_initialise, args=(state, plan), daemon=True).start()
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(state, sock)
        threading.Thread(target=connection.serve, name="connection", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    with open(args[0], encoding="utf-8") as f:
        plan: dict[str, Any] = json.load(f)
    token = os.environ.pop("MILL_REPLICA_TOKEN", "").encode()
    state = _State(token=token, workers=max(1, int(plan.get("max_concurrent", 1))))
    try:
        _serve(plan, state)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
