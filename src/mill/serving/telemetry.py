"""What the gateway records about the requests it serves.

- Prometheus metrics in a registry of the gateway's own (never the process-global one): a
  request counter by endpoint, deployment, status code and ``mirrored``, and a latency
  histogram with buckets from 0.25 ms to 60 s. Label children are cached, so recording a
  request is two dictionary look-ups and two increments.
- A recent-traffic window per endpoint for :meth:`Telemetry.summary` (the last
  ``_RECENT`` requests of each endpoint).
- The request log (JSON lines: time, endpoint, deployment, status, latency, bytes in and
  out, request id; never bodies or credentials) and data collection (request and response
  bodies of deployments that ask for it, one ``<uuid>.jsonl`` per hour per process under
  ``<collect_dir>/model_inputs|model_outputs/YYYY/MM/DD/HH/``). Both are written by one
  background thread: the request path only puts a tuple on a queue.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import IO, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["LATENCY_BUCKETS", "Telemetry"]

LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
_RECENT = 100_000  # requests kept per endpoint for summary()
_BATCH_PAUSE_S = 0.02  # the writer sleeps this long between batches, to write in bulk
_STOP = object()


class Telemetry:
    """Metrics, recent traffic, the request log and data collection of one gateway."""

    def __init__(self, request_log: Path | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "mill_gateway_requests",
            "Requests answered by the scoring gateway",
            ("endpoint", "deployment", "status", "mirrored"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "mill_gateway_request_duration_seconds",
            "Time from the request's arrival to the end of its answer",
            ("endpoint", "deployment", "mirrored"),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int, bool], tuple[Any, Any]] = {}
        self._recent: dict[str, deque[tuple[float, str, int, float, bool]]] = {}
        self._request_log = Path(request_log) if request_log else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def record(
        self,
        endpoint: str,
        deployment: str,
        status: int,
        seconds: float,
        bytes_in: int,
        bytes_out: int,
        request_id: str,
        mirrored: bool = False,
    ) -> None:
        """Count one answered request (called on the gateway's loop)."""
        key = (endpoint, deployment, status, mirrored)
        children = self._children.get(key)
        if children is None:
            flag = "true" if mirrored else "false"
            children = (
                self._requests.labels(endpoint, deployment, str(status), flag),
                self._latency.labels(endpoint, deployment, flag),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        now = time.time()
        recent = self._recent.get(endpoint)
        if recent is None:
            recent = self._recent[endpoint] = deque(maxlen=_RECENT)
        recent.append((now, deployment, status, seconds, mirrored))
        if self._request_log is not None:
            self._put(
                ("log", now, endpoint, deployment, status, seconds, bytes_in, bytes_out,
                 request_id, mirrored)
            )  # fmt: skip

    def collect(self, folder: str, kind: str, request_id: str, body: bytes) -> None:
        """Queue a body for ``<folder>/<kind>/YYYY/MM/DD/HH/<uuid>.jsonl`` (kind is
        ``model_inputs`` or ``model_outputs``)."""
        self._put(("collect", time.time(), folder, kind, request_id, body))

    def forget(self, endpoint: str) -> None:
        """Drop an endpoint's metrics and recent traffic (the endpoint was deleted)."""
        self._recent.pop(endpoint, None)
        for key in [k for k in self._children if k[0] == endpoint]:
            self._children.pop(key, None)
            flag = "true" if key[3] else "false"
            for metric, labels in (
                (self._requests, (key[0], key[1], str(key[2]), flag)),
                (self._latency, (key[0], key[1], flag)),
            ):
                try:
                    metric.remove(*labels)
                except KeyError:
                    pass

    def metrics_text(self) -> bytes:
        return generate_latest(self.registry)

    def summary(self, endpoint: str, seconds: float = 300) -> dict[str, Any]:
        """Traffic of the last ``seconds``: per deployment, requests, status codes and
        p50/p99 latency in ms; mirrored copies are counted apart (``mirrored_requests``,
        ``mirrored_status_codes``)."""
        since = time.time() - seconds
        recent = self._recent.get(endpoint)
        rows: tuple[tuple[float, str, int, float, bool], ...] = ()
        for _ in range(5):  # copying races with appends on the gateway's loop: retry
            try:
                rows = tuple(recent) if recent is not None else ()
                break
            except RuntimeError:
                continue
        per: dict[str, dict[str, Any]] = {}
        latencies: dict[str, list[float]] = {}
        for when, deployment, status, took, mirrored in rows:
            if when < since:
                continue
            entry = per.setdefault(
                deployment,
                {
                    "requests": 0,
                    "status_codes": {},
                    "mirrored_requests": 0,
                    "mirrored_status_codes": {},
                },
            )
            if mirrored:
                entry["mirrored_requests"] += 1
                codes = entry["mirrored_status_codes"]
                codes[str(status)] = codes.get(str(status), 0) + 1
                continue
            entry["requests"] += 1
            codes = entry["status_codes"]
            codes[str(status)] = codes.get(str(status), 0) + 1
            latencies.setdefault(deployment, []).append(took * 1000)
        for deployment, entry in per.items():
            values = sorted(latencies.get(deployment, ()))
            entry["p50_ms"] = _percentile(values, 0.50)
            entry["p99_ms"] = _percentile(values, 0.99)
        total = sum(entry["requests"] for entry in per.values())
        return {"endpoint": endpoint, "seconds": seconds, "requests": total, "deployments": per}

    def close(self, timeout_s: float = 5.0) -> None:
        """Write what is queued and stop the writer thread."""
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(_STOP)
            writer.join(timeout_s)

    def _put(self, item: tuple[Any, ...]) -> None:
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=_write_loop,
                        args=(self._queue, self._request_log),
                        name="mill-gateway-telemetry",
                        daemon=True,
                    )
                    self._writer.start()
        self._queue.put(item)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def _write_loop(items: queue.SimpleQueue[Any], request_log: Path | None) -> None:
    writer = _Writer(request_log)
    try:
        while True:
            batch = [items.get()]
            while True:
                try:
                    batch.append(items.get_nowait())
                except queue.Empty:
                    break
            stop = writer.write(batch)
            if stop:
                return
            time.sleep(_BATCH_PAUSE_S)
    finally:
        writer.close()


class _Writer:
    """Runs on the telemetry thread only: formats and appends lines, one flush per batch."""

    def __init__(self, request_log: Path | None) -> None:
        self.request_log = request_log
        self.log: IO[str] | None = None
        self.files: dict[tuple[str, str], tuple[str, IO[str]]] = {}
        self.process_id = uuid.uuid4().hex

    def write(self, batch: list[Any]) -> bool:
        stop = False
        touched: dict[int, IO[str]] = {}
        for item in batch:
            if item is _STOP:
                stop = True
                continue
            try:
                out = self._write_one(item)
            except (OSError, ValueError) as exc:  # telemetry never takes the gateway down
                print(f"mill gateway telemetry: {exc}", flush=True)
                continue
            touched[id(out)] = out
        for out in touched.values():
            try:
                out.flush()
            except (OSError, ValueError) as exc:
                print(f"mill gateway telemetry: {exc}", flush=True)
        return stop

    def _write_one(self, item: tuple[Any, ...]) -> IO[str]:
        if item[0] == "log":
            _, when, endpoint, deployment, status, took, bytes_in, bytes_out, rid, mirrored = item
            if self.log is None:
                assert self.request_log is not None
                self.request_log.parent.mkdir(parents=True, exist_ok=True)
                self.log = self.request_log.open("a", encoding="utf-8")
            line = {
                "time": _iso(when),
                "endpoint": endpoint,
                "deployment": deployment,
                "status": status,
                "latency_ms": round(took * 1000, 3),
                "bytes_in": bytes_in,
                "bytes_out": bytes_out,
                "request_id": rid,
            }
            if mirrored:
                line["mirrored"] = True
            self.log.write(json.dumps(line) + "\n")
            return self.log
        _, when, folder, kind, rid, body = item
        out = self._collection_file(folder, kind, when)
        try:
            data: Any = json.loads(body)
        except ValueError:
            data = body.decode("utf-8", errors="replace")
        out.write(json.dumps({"time": _iso(when), "request_id": rid, "data": data}) + "\n")
        return out

    def _collection_file(self, folder: str, kind: str, when: float) -> IO[str]:
        hour = dt.datetime.fromtimestamp(when, dt.timezone.utc).strftime("%Y/%m/%d/%H")
        current = self.files.get((folder, kind))
        if current is not None and current[0] == hour:
            return current[1]
        if current is not None:
            current[1].close()
        path = Path(folder, kind, hour, f"{self.process_id}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", encoding="utf-8")
        self.files[(folder, kind)] = (hour, out)
        return out

    def _open_files(self) -> list[IO[str]]:
        files = [out for _, out in self.files.values()]
        return [*files, self.log] if self.log is not None else files

    def close(self) -> None:
        for out in self._open_files():
            try:
                out.close()
            except OSError:
                pass


def _iso(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.timezone.utc).isoformat(timespec="milliseconds")
