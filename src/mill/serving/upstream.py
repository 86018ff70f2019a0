"""The gateway's side of the replica protocol: connections, slots and the choice of replica.

Each replica gets ONE kept-alive TCP connection, opened lazily on its first request (HELLO
with the replica's token, pipelined with the first requests) and multiplexed: every request
is a REQUEST frame with its own id and the answers come back in any order
(:mod:`mill.runtime.scoring_protocol`). There is never a connection per request.

A :class:`DeploymentPool` holds a deployment's ready replicas and hands out slots: least
in-flight first, at most ``max_concurrent`` per replica, then a FIFO queue bounded by
``max_queue_wait_ms`` (:class:`QueueFull`). A slot is given back when the replica answers or
dies, not when the caller stops waiting, so a request that timed out keeps its replica busy
until the late answer arrives.

Retries: replicas are stateless scorers, so when a connection is lost the requests on it
that had no answer fail with :class:`ReplicaLost` and the gateway sends each once more to
another ready replica of the same deployment. The lost replica leaves the pool at once and
``on_lost`` is called; bringing it back is the supervisor's job (a later route lists it
again with its new address).

A replica dropped from a route is drained: it gets no new requests, those in flight finish,
then its connection closes.

:func:`probe` and :func:`probe_sync` are health checks for the supervisor on a short
connection of their own: ``GET /`` answers 200 once ``init()`` has finished.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from mill.runtime.scoring_protocol import (
    HELLO,
    REQUEST,
    RESPONSE,
    FrameParser,
    ProtocolError,
    encode,
)

__all__ = [
    "Answer",
    "DeploymentPool",
    "NoReadyReplica",
    "QueueFull",
    "Replica",
    "ReplicaAddress",
    "ReplicaLost",
    "RequestTimeout",
    "UpstreamError",
    "probe",
    "probe_sync",
]

Answer = tuple[int, dict[str, str], bytes]
_MAX_ANSWER = 1 << 31
_CONNECT_TIMEOUT_S = 5.0
_ID_LIMIT = 1 << 32


@dataclass(frozen=True)
class ReplicaAddress:
    """Where a ready replica listens, and the token its HELLO must carry."""

    id: str
    host: str
    port: int
    token: str


class UpstreamError(Exception):
    """A request could not be answered by a replica; the message says why."""


class ReplicaLost(UpstreamError):
    """The replica's connection closed (or never opened) before it answered."""


class NoReadyReplica(UpstreamError):
    """The deployment has no ready replica."""


class QueueFull(UpstreamError):
    """Every replica was busy for longer than the deployment's ``max_queue_wait_ms``."""


class RequestTimeout(UpstreamError):
    """The replica did not answer within ``request_timeout_ms``."""


class _Connection(asyncio.Protocol):
    def __init__(self, replica: Replica) -> None:
        self.replica = replica
        self.parser = FrameParser(_MAX_ANSWER)

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.parser.feed(data)
        except ProtocolError as exc:
            self.replica.lost(f"sent a malformed frame ({exc})")
            return
        replica = self.replica
        for kind, request_id, meta, body in frames:
            if kind == RESPONSE:
                replica.answered(request_id, meta, body)
            elif kind == HELLO:
                replica.greeted = True

    def connection_lost(self, exc: Exception | None) -> None:
        self.replica.lost(f"closed the connection ({exc})" if exc else "closed the connection")


class Replica:
    """One replica as the gateway sees it: its connection, requests in flight, slots taken."""

    __slots__ = (
        "_connecting",
        "_pending",
        "_queued",
        "_transport",
        "address",
        "dead",
        "draining",
        "greeted",
        "ids",
        "in_flight",
        "pool",
    )

    def __init__(self, address: ReplicaAddress, pool: DeploymentPool) -> None:
        self.address = address
        self.pool = pool
        self.in_flight = 0  # slots taken: requests sent or about to be, not yet answered
        self.draining = False
        self.dead = False
        self.greeted = False
        self.ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._transport: asyncio.Transport | None = None
        self._queued: list[bytes] | None = None  # frames written once connected
        self._connecting: asyncio.Task[None] | None = None

    def submit(self, meta: Mapping[str, Any], body: bytes) -> asyncio.Future[Answer]:
        """Send a REQUEST on the caller's slot; the future gets ``(status, headers, body)``
        or :class:`ReplicaLost`. The slot is given back when the replica answers or dies."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        if self.dead:
            self.pool.release(self)
            future.set_exception(ReplicaLost(f"replica {self.address.id} is gone"))
            return future
        request_id = next(self.ids)
        if request_id >= _ID_LIMIT:
            self.ids = itertools.count(2)
            request_id = 1
        self._pending[request_id] = future
        frame = encode(REQUEST, request_id, meta, body)
        if self._transport is not None:
            self._transport.write(frame)
        elif self._queued is not None:
            self._queued.append(frame)
        else:
            self._queued = [frame]
            self._connecting = loop.create_task(self._connect())
        return future

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        address = self.address
        try:
            transport, _ = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(self), address.host, address.port),
                _CONNECT_TIMEOUT_S,
            )
        except (OSError, asyncio.TimeoutError) as exc:
            self.lost(f"could not be reached at {address.host}:{address.port} ({exc})")
            return
        if self.dead:  # lost or closed while connecting
            transport.close()
            return
        queued, self._queued = self._queued or [], None
        # The replica reads frames in order, so the requests may follow HELLO at once.
        transport.write(b"".join([encode(HELLO, 0, {"token": address.token}), *queued]))
        # uvloop's transports are not asyncio.Transport subclasses; they have its methods.
        self._transport = cast(asyncio.Transport, transport)
        if self.draining and self.in_flight == 0:
            self.close()

    def answered(self, request_id: int, meta: dict[str, Any], body: bytes) -> None:
        future = self._pending.pop(request_id, None)
        if future is None:
            return
        self.pool.release(self)
        if not future.done():
            headers = meta.get("headers")
            future.set_result((int(meta.get("status", 502)), headers or {}, body))

    def lost(self, why: str) -> None:
        """The connection is gone: leave the pool, fail what had no answer, tell the owner."""
        if self.dead:
            return
        self.dead = True
        transport, self._transport, self._queued = self._transport, None, None
        if transport is not None:
            transport.close()
        pending, self._pending = self._pending, {}
        self.pool.forget(self, report=not self.draining)
        message = f"replica {self.address.id} {why}"
        if not self.greeted:
            message += " before answering HELLO (is its token right?)"
        for future in pending.values():
            self.pool.release(self)
            if not future.done():
                future.set_exception(ReplicaLost(message))

    def close(self) -> None:
        """Close the connection now (a drained replica with nothing in flight)."""
        transport = self._transport
        if transport is not None and not self._pending:
            self.dead = True
            self._transport = None
            transport.close()


class DeploymentPool:
    """The ready replicas of one deployment and the slots they offer."""

    def __init__(self, name: str, on_lost: Callable[[ReplicaAddress], None]) -> None:
        self.name = name
        self.on_lost = on_lost
        self.limit = 1
        self.queue_wait_s = 0.5
        self.replicas: list[Replica] = []
        self._draining: set[Replica] = set()
        self._waiters: deque[asyncio.Future[Replica]] = deque()
        self._turn = 0

    def update(
        self, addresses: Iterable[ReplicaAddress], max_concurrent: int, queue_wait_ms: int
    ) -> None:
        """Take a new set of ready replicas; those no longer listed are drained."""
        self.limit = max(1, int(max_concurrent))
        self.queue_wait_s = max(0, int(queue_wait_ms)) / 1000
        current = {replica.address: replica for replica in self.replicas}
        wanted: list[Replica] = []
        for address in dict.fromkeys(addresses):
            replica = current.pop(address, None)
            wanted.append(replica if replica is not None else Replica(address, self))
        self.replicas = wanted
        for replica in current.values():
            self._drain(replica)
        if not wanted:
            self._fail_waiters()
        else:
            self._serve_waiters()

    def close(self) -> None:
        """Drain every replica (the deployment or its endpoint is gone)."""
        replicas, self.replicas = self.replicas, []
        for replica in replicas:
            self._drain(replica)
        self._fail_waiters()

    def try_acquire(self) -> Replica | None:
        """A slot on the least busy replica with room, or None; queued callers go first."""
        if self._waiters:
            return None
        return self._pick()

    async def acquire(self) -> Replica:
        """A slot, waiting in line up to ``queue_wait_s``; raises NoReadyReplica or QueueFull."""
        replica = self.try_acquire()
        if replica is not None:
            return replica
        if not self.replicas:
            raise NoReadyReplica(f"deployment {self.name} has no ready replica")
        if self.queue_wait_s <= 0:
            raise QueueFull(self._full_message())
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Replica] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.queue_wait_s, self._expire, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result())  # handed a slot just as the caller left
            raise
        finally:
            timer.cancel()

    def release(self, replica: Replica) -> None:
        replica.in_flight -= 1
        if replica.draining:
            if replica.in_flight <= 0:
                self._draining.discard(replica)
                replica.close()
        elif self._waiters:
            self._serve_waiters()

    def forget(self, replica: Replica, report: bool) -> None:
        """A replica's connection was lost: no more requests go to it."""
        self._draining.discard(replica)
        if replica in self.replicas:
            self.replicas = [r for r in self.replicas if r is not replica]
            if not self.replicas:
                self._fail_waiters()
        if report:
            self.on_lost(replica.address)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas) + sum(r.in_flight for r in self._draining)

    def _pick(self) -> Replica | None:
        replicas = self.replicas
        count = len(replicas)
        if count == 1:
            only = replicas[0]
            if only.in_flight < self.limit:
                only.in_flight += 1
                return only
            return None
        best: Replica | None = None
        self._turn = start = (self._turn + 1) % (count or 1)
        for i in range(count):  # rotate the start so idle replicas share the load
            replica = replicas[(start + i) % count]
            if replica.in_flight < self.limit and (
                best is None or replica.in_flight < best.in_flight
            ):
                best = replica
        if best is not None:
            best.in_flight += 1
        return best

    def _drain(self, replica: Replica) -> None:
        replica.draining = True
        if replica.in_flight <= 0:
            replica.close()
        else:
            self._draining.add(replica)

    def _serve_waiters(self) -> None:
        waiters = self._waiters
        while waiters:
            if waiters[0].done():
                waiters.popleft()
                continue
            replica = self._pick()
            if replica is None:
                return
            waiters.popleft().set_result(replica)

    def _fail_waiters(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(NoReadyReplica(f"deployment {self.name} has no ready replica"))

    def _expire(self, waiter: asyncio.Future[Replica]) -> None:
        if not waiter.done():
            waiter.set_exception(QueueFull(self._full_message()))

    def _full_message(self) -> str:
        return (
            f"deployment {self.name} is at capacity: {len(self.replicas)} replica(s) x "
            f"max_concurrent_requests_per_instance {self.limit} are busy and no slot freed "
            f"within max_queue_wait_ms {int(self.queue_wait_s * 1000)}; retry, or raise "
            "instance_count or request_settings"
        )


def _probe_blocking(address: ReplicaAddress, timeout_s: float) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s) as sock:
            sock.sendall(
                encode(HELLO, 0, {"token": address.token})
                + encode(REQUEST, 1, {"method": "GET", "path": "/", "query": "", "headers": {}})
            )
            parser = FrameParser(_MAX_ANSWER)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return 0, b""
                sock.settimeout(remaining)
                data = sock.recv(65536)
                if not data:
                    return 0, b""
                for kind, request_id, meta, body in parser.feed(data):
                    if kind == RESPONSE and request_id == 1:
                        return int(meta.get("status", 0)), body
    except (OSError, ProtocolError, ValueError):
        return 0, b""


async def probe(address: ReplicaAddress, timeout: float) -> tuple[int, bytes]:
    """``GET /`` on a short connection of its own: ``(status, body)``; status 0 when the
    replica did not answer (refused, closed, wrong token, or past ``timeout`` seconds)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, _probe_blocking, address, timeout)


def probe_sync(address: ReplicaAddress, timeout_s: float) -> int:
    """The status of ``GET /`` (200 ready, 503 starting), or 0 when there was no answer."""
    return _probe_blocking(address, timeout_s)[0]
