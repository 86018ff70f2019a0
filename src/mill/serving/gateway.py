"""The scoring gateway: the stable scoring URI of every online endpoint.

It runs inside the control-plane process on a port of its own, in its own thread and event
loop (:class:`GatewayServer`: uvicorn with httptools on uvloop), and is a raw ASGI app
(:class:`Gateway`) with no framework routing on the request path.

Interface for the replica supervisor, which feeds the gateway its routing table::

    @dataclass(frozen=True)
    class ReplicaAddress:  id: str; host: str; port: int; token: str
    @dataclass(frozen=True)
    class DeploymentRoute:
        name: str
        replicas: tuple[ReplicaAddress, ...]   # the READY replicas; the supervisor updates this
        request_timeout_ms: int = 5000
        max_concurrent_requests_per_instance: int = 1
        max_queue_wait_ms: int = 500
        collect_inputs: bool = False; collect_outputs: bool = False; collect_dir: str | None = None
    @dataclass(frozen=True)
    class EndpointRoute:
        name: str; auth_mode: str  # "key" | "aml_token"
        keys: tuple[str, ...]      # primary, secondary (plain text, memory only)
        token_secret: bytes        # HMAC key for aml_token
        traffic: Mapping[str, int]; mirror_traffic: Mapping[str, int]
        deployments: Mapping[str, DeploymentRoute]
    class Gateway:
        def __init__(self, *, max_body_bytes=100 * 2**20, on_replica_lost=None,
                     request_log=None, admin_token=None)
        def set_endpoint(self, route: EndpointRoute) -> None   # thread-safe
        def remove_endpoint(self, name: str) -> None            # thread-safe
        def summary(self, endpoint: str, seconds: float = 300) -> dict
        async def __call__(self, scope, receive, send)          # raw ASGI
    class GatewayServer:
        def __init__(self, gateway, host, port, *, certfile=None, keyfile=None)
        def start(self) -> None    # returns once listening; port 0 picks a free port
        def stop(self) -> None     # graceful: in-flight requests finish (bounded)
        url: str                   # http(s)://host:port

Routes: ``POST /endpoints/<name>/score``, and any other method and path under
``/endpoints/<name>/`` forwarded with the path relative to the endpoint
(``/swagger.json``, ``/v2/models/<m>/infer``); ``GET /healthz``; ``GET /metrics``
(Prometheus; with ``admin_token`` set it wants ``Authorization: Bearer <admin_token>``).

A request is authenticated (``Authorization: Bearer <key or token>``) before its body is
read; then a deployment is chosen (the ``azureml-model-deployment`` header pins one, else a
weighted draw over ``traffic``), the body is read (at most ``max_body_bytes``) and sent as
one frame to the least busy ready replica (:mod:`mill.serving.upstream`: queueing, 429,
504, retry once on a lost replica, draining). Unpinned requests are copied to mirror
deployments with probability ``mirror_traffic[d] / 100``; a copy never waits for a slot and
its answer is discarded. Every error is JSON ``{"error": "<message>"}``. ``on_replica_lost``
is called with the replica's id on the gateway's loop: it must be quick and thread-safe.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mill.serving.credentials import key_matches, token_expiry
from mill.serving.telemetry import Telemetry
from mill.serving.upstream import (
    Answer,
    DeploymentPool,
    NoReadyReplica,
    QueueFull,
    ReplicaAddress,
    ReplicaLost,
    RequestTimeout,
    UpstreamError,
)

__all__ = ["DeploymentRoute", "EndpointRoute", "Gateway", "GatewayServer", "ReplicaAddress"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_PREFIX = "/endpoints/"
_HOP_BY_HOP = frozenset(
    b"connection keep-alive proxy-authenticate proxy-authorization te trailer "
    b"transfer-encoding upgrade content-length host".split()
)
_JSON = [(b"content-type", b"application/json")]
_UNAUTHORIZED = [*_JSON, (b"www-authenticate", b"Bearer")]
_TOKEN_CACHE = 4096


@dataclass(frozen=True)
class DeploymentRoute:
    """How the gateway reaches one deployment: its READY replicas and request settings."""

    name: str
    replicas: tuple[ReplicaAddress, ...]
    request_timeout_ms: int = 5000
    max_concurrent_requests_per_instance: int = 1
    max_queue_wait_ms: int = 500
    collect_inputs: bool = False
    collect_outputs: bool = False
    collect_dir: str | None = None


@dataclass(frozen=True)
class EndpointRoute:
    """An endpoint as the gateway serves it: credentials, traffic, mirror and deployments."""

    name: str
    auth_mode: str
    keys: tuple[str, ...]
    token_secret: bytes
    traffic: Mapping[str, int] = field(default_factory=dict)
    mirror_traffic: Mapping[str, int] = field(default_factory=dict)
    deployments: Mapping[str, DeploymentRoute] = field(default_factory=dict)


class _Endpoint:
    """An endpoint's route compiled for the request path (lives on the gateway's loop)."""

    def __init__(
        self,
        route: EndpointRoute,
        previous: _Endpoint | None,
        on_lost: Callable[[ReplicaAddress], None],
    ) -> None:
        self.route = route
        self.key_mode = route.auth_mode.lower() != "aml_token"
        self.tokens: dict[str, int] = {}  # verified token -> expiry
        old_pools = dict(previous.pools) if previous is not None else {}
        self.pools: dict[str, DeploymentPool] = {}
        for name, deployment in route.deployments.items():
            pool = old_pools.pop(name, None) or DeploymentPool(name, on_lost)
            pool.update(
                deployment.replicas,
                deployment.max_concurrent_requests_per_instance,
                deployment.max_queue_wait_ms,
            )
            self.pools[name] = pool
        for pool in old_pools.values():
            pool.close()
        live = [(n, w) for n, w in route.traffic.items() if w > 0 and n in route.deployments]
        self.names = [name for name, _ in live]
        self.cumulative: list[float] = []
        total = 0.0
        for _, weight in live:
            total += weight
            self.cumulative.append(total)
        self.total = total
        self.mirrors = [
            (name, pct / 100)
            for name, pct in route.mirror_traffic.items()
            if pct > 0 and name in route.deployments
        ]

    def choose(self) -> str | None:
        if not self.names:
            return None
        if len(self.names) == 1:
            return self.names[0]
        return self.names[bisect.bisect_right(self.cumulative, random.random() * self.total)]

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()


class Gateway:
    """The scoring gateway as a raw ASGI app; see the module docstring."""

    def __init__(
        self,
        *,
        max_body_bytes: int = 100 * 2**20,
        on_replica_lost: Callable[[str], None] | None = None,
        request_log: Path | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.on_replica_lost = on_replica_lost
        self.admin_token = admin_token
        self.telemetry = Telemetry(request_log)
        self._endpoints: dict[str, _Endpoint] = {}  # touched on the gateway's loop only
        self._pending: dict[str, EndpointRoute | None] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: set[asyncio.Task[None]] = set()

    # -- routing table (any thread) ---------------------------------------------------------

    def set_endpoint(self, route: EndpointRoute) -> None:
        """Serve ``route`` (new or changed); replicas no longer listed are drained."""
        with self._lock:
            self._pending[route.name] = route
        self._wake()

    def remove_endpoint(self, name: str) -> None:
        """Stop serving ``name``: it answers 404; its replicas are drained."""
        with self._lock:
            self._pending[name] = None
        self._wake()

    def summary(self, endpoint: str, seconds: float = 300) -> dict[str, Any]:
        """Recent traffic of ``endpoint``: per deployment requests, status codes, p50/p99 ms."""
        return self.telemetry.summary(endpoint, seconds)

    def load(self, endpoint: str, deployment: str) -> int:
        """Requests of the deployment in flight or waiting for a slot now (any thread: a
        racy read of counters, good enough for autoscaling)."""
        served = self._endpoints.get(endpoint)
        pool = served.pools.get(deployment) if served is not None else None
        if pool is None:
            return 0
        return sum(replica.in_flight for replica in pool.replicas) + pool.waiting

    def _wake(self) -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._apply_pending)
            except RuntimeError:
                pass  # the loop is closing; the next startup applies the routes

    def _apply_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for name, route in pending.items():
            previous = self._endpoints.pop(name, None)
            if route is not None:
                self._endpoints[name] = _Endpoint(route, previous, self._replica_lost)
            elif previous is not None:
                previous.close()
                self.telemetry.forget(name)

    def _replica_lost(self, address: ReplicaAddress) -> None:
        callback = self.on_replica_lost
        if callback is not None:
            try:
                callback(address.id)
            except Exception as exc:  # the supervisor's bug must not break the gateway
                print(f"mill gateway: on_replica_lost({address.id!r}) failed: {exc!r}")

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self._apply_pending()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _shutdown(self) -> None:
        self._loop = None
        with self._lock:  # a restarted server serves the same routes
            for name, endpoint in self._endpoints.items():
                self._pending.setdefault(name, endpoint.route)
        for endpoint in self._endpoints.values():
            endpoint.close()
        self._endpoints.clear()
        for task in list(self._background):
            task.cancel()
        self.telemetry.close()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if self._pending:
            self._apply_pending()
        path: str = scope["path"]
        if not path.startswith(_PREFIX):
            await self._service_route(scope, path, send)
            return
        rest = path[len(_PREFIX) :]
        cut = rest.find("/")
        name, relative = (rest, "/") if cut < 0 else (rest[:cut], rest[cut:])
        endpoint = self._endpoints.get(name)
        if endpoint is None:
            await _error(send, 404, f"no online endpoint named {name!r} is served here")
            return
        request_id = str(uuid.uuid4())
        authorization = b""
        pinned = ""
        declared = -1
        forward: dict[str, str] = {}
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value
            elif key in _HOP_BY_HOP:
                if key == b"content-length":
                    declared = int(value) if value.isdigit() else -1
            else:
                text = value.decode("latin-1")
                forward[key.decode("latin-1")] = text
                if key == b"azureml-model-deployment":
                    pinned = text
        forward["x-request-id"] = request_id
        reply = [(b"x-request-id", request_id.encode())]

        if not self._authorized(endpoint, authorization):
            status = 401
            why = "missing" if not authorization else "not valid for this endpoint"
            kind = "key" if endpoint.key_mode else "token"
            await _error(
                send,
                status,
                f"the bearer {kind} is {why}: send 'Authorization: Bearer <{kind}>' "
                f"(mill online-endpoint get-credentials -n {name})",
                [*_UNAUTHORIZED, *reply],
            )
            self.telemetry.record(name, "", status, time.perf_counter() - started, 0, 0, request_id)
            return

        deployment = pinned or endpoint.choose()
        if deployment is None:
            await _error(
                send,
                503,
                f"endpoint {name} has no traffic set: route some with "
                f"'mill online-endpoint update -n {name} --traffic \"<deployment>=100\"' "
                "or name one in the azureml-model-deployment header",
                [*_JSON, *reply],
            )
            self.telemetry.record(name, "", 503, time.perf_counter() - started, 0, 0, request_id)
            return
        route = endpoint.route.deployments.get(deployment)
        if route is None:
            known = ", ".join(sorted(endpoint.route.deployments)) or "none"
            await _error(
                send,
                404,
                f"endpoint {name} has no deployment {deployment!r} (its deployments: {known})",
                [*_JSON, *reply],
            )
            return
        reply.append((b"azureml-model-deployment", deployment.encode()))

        body = await self._read_body(receive, declared)
        if body is None:
            status = 413
            await _error(
                send,
                status,
                f"the request body is larger than the gateway's limit of "
                f"{self.max_body_bytes} bytes",
                [*_JSON, *reply, (b"connection", b"close")],
            )
            self.telemetry.record(
                name,
                deployment,
                status,
                time.perf_counter() - started,
                max(declared, 0),
                0,
                request_id,
            )
            return

        meta = {
            "method": scope["method"],
            "path": relative,
            "query": scope["query_string"].decode("latin-1"),
            "headers": forward,
        }
        if not pinned and endpoint.mirrors:
            for mirror, share in endpoint.mirrors:
                if mirror != deployment and random.random() < share:
                    self._spawn(self._mirror(endpoint, mirror, meta, body, request_id))
        pool = endpoint.pools[deployment]
        try:
            status, headers, answer = await _forward(pool, route, meta, body)
        except UpstreamError as exc:
            status = _STATUS[type(exc)]
            await _error(send, status, f"endpoint {name}: {exc}", [*_JSON, *reply])
            self.telemetry.record(
                name, deployment, status, time.perf_counter() - started, len(body), 0, request_id
            )
            return
        for key_text, value_text in headers.items():
            key = key_text.lower().encode("latin-1")
            if key not in _HOP_BY_HOP:
                reply.append((key, str(value_text).encode("latin-1")))
        reply.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": reply})
        await send({"type": "http.response.body", "body": answer})
        telemetry = self.telemetry
        telemetry.record(
            name,
            deployment,
            status,
            time.perf_counter() - started,
            len(body),
            len(answer),
            request_id,
        )
        if route.collect_dir:
            if route.collect_inputs:
                telemetry.collect(route.collect_dir, "model_inputs", request_id, body)
            if route.collect_outputs and status < 400:
                telemetry.collect(route.collect_dir, "model_outputs", request_id, answer)

    def _authorized(self, endpoint: _Endpoint, authorization: bytes) -> bool:
        if authorization[:7].lower() != b"bearer ":
            return False
        credential = authorization[7:].strip().decode("latin-1")
        if not credential:
            return False
        route = endpoint.route
        if endpoint.key_mode:
            return key_matches(credential, route.keys)
        expiry = endpoint.tokens.get(credential)
        if expiry is not None and expiry > time.time():
            return True
        expiry = token_expiry(route.token_secret, route.name, credential)
        if expiry:
            if len(endpoint.tokens) >= _TOKEN_CACHE:
                endpoint.tokens.clear()
            endpoint.tokens[credential] = expiry
        return expiry > 0

    async def _read_body(self, receive: Receive, declared: int) -> bytes | None:
        """The whole body, or None when it is over ``max_body_bytes``."""
        limit = self.max_body_bytes
        if declared > limit:
            return None
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            return body if len(body) <= limit else None
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client left; whatever follows answers no one
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _service_route(self, scope: Scope, path: str, send: Send) -> None:
        if path == "/healthz":
            await _send(send, 200, b'{"status": "ok"}', _JSON)
        elif path == "/metrics" and scope["method"] == "GET":
            if self.admin_token is not None:
                given = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
                if not key_matches(
                    given[7:] if given[:7].lower() == "bearer " else "", (self.admin_token,)
                ):
                    await _error(
                        send, 401, "metrics need the admin token as a bearer token", _UNAUTHORIZED
                    )
                    return
            headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
            await _send(send, 200, self.telemetry.metrics_text(), headers)
        else:
            await _error(
                send,
                404,
                f"no route {scope['method']} {path}: score with POST /endpoints/<endpoint>/score",
            )

    def _spawn(self, coroutine: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _mirror(
        self, endpoint: _Endpoint, deployment: str, meta: dict[str, Any], body: bytes, rid: str
    ) -> None:
        """A copy of a request: never queued, never retried, its answer only counted."""
        started = time.perf_counter()
        pool = endpoint.pools[deployment]
        route = endpoint.route.deployments[deployment]
        replica = pool.try_acquire()
        status = 429
        if replica is not None:
            future = replica.submit(meta, body)
            status = await _answer_of(future, route)
        self.telemetry.record(
            endpoint.route.name,
            deployment,
            status,
            time.perf_counter() - started,
            len(body),
            0,
            rid,
            mirrored=True,
        )


_STATUS: dict[type[UpstreamError], int] = {
    NoReadyReplica: 503,
    QueueFull: 429,
    RequestTimeout: 504,
    ReplicaLost: 502,
}


async def _answer_of(future: asyncio.Future[Answer], route: DeploymentRoute) -> int:
    loop = asyncio.get_running_loop()
    timer = loop.call_later(route.request_timeout_ms / 1000, _expire, future, route)
    try:
        return (await future)[0]
    except UpstreamError as exc:
        return _STATUS[type(exc)]
    finally:
        timer.cancel()


async def _forward(
    pool: DeploymentPool, route: DeploymentRoute, meta: dict[str, Any], body: bytes
) -> Answer:
    """Send to the least busy replica; once more to another if that one is lost."""
    loop = asyncio.get_running_loop()
    deadline = 0.0
    for attempt in (0, 1):
        replica = pool.try_acquire()
        if replica is None:
            replica = await pool.acquire()
        future = replica.submit(meta, body)
        if not attempt:
            deadline = loop.time() + route.request_timeout_ms / 1000
        timer = loop.call_at(deadline, _expire, future, route)
        try:
            return await future
        except ReplicaLost:
            if attempt:
                raise
        finally:
            timer.cancel()
    raise AssertionError("unreachable")


def _expire(future: asyncio.Future[Answer], route: DeploymentRoute) -> None:
    if not future.done():
        future.set_exception(
            RequestTimeout(
                f"deployment {route.name} did not answer within request_timeout_ms "
                f"{route.request_timeout_ms}"
            )
        )


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = _JSON
) -> None:
    await _send(send, status, json.dumps({"error": message}).encode(), headers)


class GatewayServer:
    """Runs a :class:`Gateway` under uvicorn (httptools, uvloop) in a thread of its own."""

    graceful_timeout_s = 10.0  # how long stop() lets in-flight requests finish
    start_timeout_s = 30.0

    def __init__(
        self,
        gateway: Gateway,
        host: str,
        port: int,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.host = host
        self.port = port
        self.certfile = certfile
        self.keyfile = keyfile
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://{_url_host(host)}:{port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def start(self) -> None:
        """Listen, serve from a new thread, and return once the gateway accepts requests."""
        import uvicorn

        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.url = f"{'https' if self.certfile else 'http'}://{_url_host(self.host)}:{self.port}"
        config = uvicorn.Config(
            self.gateway,
            host=self.host,
            port=self.port,
            http="httptools",
            ws="none",
            lifespan="on",
            log_config=None,  # the control plane's logging stays as it is
            access_log=False,  # the gateway keeps its own buffered request log
            server_header=False,
            date_header=False,
            ssl_certfile=self.certfile,
            ssl_keyfile=self.keyfile,
            timeout_graceful_shutdown=int(self.graceful_timeout_s),
            backlog=4096,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run, args=(sock,), name="mill-gateway", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"the scoring gateway did not start on {self.url}: "
                    f"{self._failure or 'timed out'}"
                )
            time.sleep(0.005)

    def _run(self, sock: socket.socket) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:  # uvicorn[standard] brings uvloop; plain asyncio still works
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._server.serve(sockets=[sock]))
        except BaseException as exc:
            self._failure = exc
        finally:
            sock.close()
            loop.close()

    def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (bounded), close every connection."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(self.graceful_timeout_s + 5)
            self._thread = None


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
