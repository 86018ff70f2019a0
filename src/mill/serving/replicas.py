"""The replica supervisor: starts each deployment's replica processes, watches them, and
says which are ready to take traffic.

A :class:`ReplicaSet` is one generation of one deployment: ``count`` processes started from
the same plan in the deployment's environment. A replica is *starting* until its health
check answers 200 (``init()`` done), then *ready*; a ready replica that dies or fails its
liveness probe ``failure_threshold`` times is killed, taken out of traffic at once and
started again (it rejoins when ready). A replica that exits while starting with the
replica's ``INIT_FAILED`` status fails the whole set: ``init()`` is the user's code and
will fail the same way again, so the set reports the log excerpt instead of looping.

Nothing here knows about endpoints' keys or traffic: whenever the ready replicas of a set
change, ``on_change(set)`` is called (from the supervisor's thread) and the caller builds
the gateway's route from :meth:`ReplicaSet.ready_addresses`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mill.compute.processes import kill_tree
from mill.serving.gateway import ReplicaAddress
from mill.serving.upstream import probe_sync

__all__ = ["INIT_FAILED", "ProbeSettings", "Replica", "ReplicaSet", "Supervisor", "runtime_path"]

log = logging.getLogger("mill.serving")

INIT_FAILED = 3  # mill.runtime.replica.INIT_FAILED (the runtime is not imported here)
_RUNTIME_PACKAGE = "millrt"
_TICK_S = 0.25


@dataclass(frozen=True)
class ProbeSettings:
    """Azure's probe fields (seconds); readiness is checked every tick while starting."""

    initial_delay: float = 10
    period: float = 10
    timeout: float = 2
    failure_threshold: int = 30
    success_threshold: int = 1


@dataclass
class Replica:
    index: int
    token: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    address: ReplicaAddress | None = None
    state: str = "starting"  # starting | ready | stopped
    started_at: float = 0.0
    last_probe: float = 0.0
    failures: int = 0
    restarts: int = 0


@dataclass
class ReplicaSet:
    """One generation of one deployment's replicas."""

    endpoint: str
    deployment: str
    generation: int
    python: str
    plan: dict[str, Any]
    env: Mapping[str, str]
    folder: Path  # plans, port files and logs
    count: int
    liveness: ProbeSettings = field(default_factory=ProbeSettings)
    startup_timeout_s: float = 600.0
    drain_s: float = 6.0  # how long requests in flight may take once the set is retired
    replicas: list[Replica] = field(default_factory=list)
    failed: str | None = None  # why the set cannot serve (init() failed, start timed out)
    stopping: bool = False

    @property
    def key(self) -> str:
        return f"{self.endpoint}/{self.deployment}/g{self.generation}"

    def ready_addresses(self) -> tuple[ReplicaAddress, ...]:
        return tuple(r.address for r in self.replicas if r.state == "ready" and r.address)

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "index": r.index,
                "state": r.state,
                "pid": r.process.pid if r.process else None,
                "restarts": r.restarts,
                "log": r.log_path.name,
            }
            for r in self.replicas
        ]


def runtime_path(home: Path) -> Path:
    """A folder whose only package is ``millrt``: Mill's replica runtime, importable in any
    environment without putting the control plane's own packages on its path."""
    source = Path(__file__).resolve().parents[1] / "runtime"
    folder = home / "lib" / f"runtime-{abs(hash(str(source))) % 10**12}"
    link = folder / _RUNTIME_PACKAGE
    if not link.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{_RUNTIME_PACKAGE}.{os.getpid()}.{secrets.token_hex(4)}"
        tmp.symlink_to(source, target_is_directory=True)
        try:
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
    return folder


class Supervisor:
    """Starts, watches and stops replica sets, from one thread."""

    def __init__(self, home: Path, on_change: Callable[[ReplicaSet], None]) -> None:
        self.home = home
        self.on_change = on_change
        self._sets: dict[str, ReplicaSet] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._lost: set[str] = set()  # replica ids the gateway lost its connection to
        self._thread = threading.Thread(target=self._loop, name="mill-replicas", daemon=True)

    # Lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            sets = list(self._sets.values())
            self._sets.clear()
        for replica_set in sets:
            self._terminate(replica_set, grace_s=2)

    # Sets --------------------------------------------------------------------------
    def launch(self, replica_set: ReplicaSet) -> None:
        """Start every replica of the set; :meth:`wait_ready` tells when they serve."""
        replica_set.folder.mkdir(parents=True, exist_ok=True)
        for index in range(replica_set.count):
            replica = Replica(
                index=index,
                token=secrets.token_urlsafe(24),
                log_path=replica_set.folder / f"replica-{index}.log",
            )
            replica_set.replicas.append(replica)
            self._spawn(replica_set, replica)
        with self._lock:
            self._sets[replica_set.key] = replica_set

    def wait_ready(self, replica_set: ReplicaSet, timeout_s: float) -> None:
        """Block until every replica is ready; raise ``RuntimeError`` with the reason (and
        the log's last lines) when the set failed or the time ran out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if replica_set.failed:
                raise RuntimeError(replica_set.failed)
            if all(r.state == "ready" for r in replica_set.replicas):
                return
            time.sleep(0.05)
        starting = [r for r in replica_set.replicas if r.state != "ready"]
        excerpt = log_excerpt(starting[0].log_path) if starting else ""
        replica_set.failed = (
            f"{len(starting)} of {replica_set.count} replica(s) were not ready after "
            f"{timeout_s:.0f} s (init() still running?)" + (f"\n{excerpt}" if excerpt else "")
        )
        raise RuntimeError(replica_set.failed)

    def retire(self, replica_set: ReplicaSet, drain_s: float = 0.0) -> None:
        """Stop a set (after ``drain_s`` seconds, so requests in flight finish)."""
        replica_set.stopping = True
        with self._lock:
            self._sets.pop(replica_set.key, None)
        if drain_s > 0:
            timer = threading.Timer(drain_s, self._terminate, args=(replica_set,))
            timer.daemon = True
            timer.start()
        else:
            self._terminate(replica_set)

    def sets(self) -> list[ReplicaSet]:
        with self._lock:
            return list(self._sets.values())

    def replica_lost(self, replica_id: str) -> None:
        """The gateway lost its connection to a replica: check it on the next tick."""
        self._lost.add(replica_id)

    # The loop ----------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(_TICK_S):
            for replica_set in self.sets():
                try:
                    if self._check(replica_set):
                        self.on_change(replica_set)
                except Exception:  # one bad set must not stop the supervision of others
                    log.exception("supervising %s failed", replica_set.key)

    def _check(self, replica_set: ReplicaSet) -> bool:
        """One look at every replica; True when the ready ones changed."""
        changed = False
        now = time.monotonic()
        for replica in replica_set.replicas:
            if replica_set.stopping or replica_set.failed:
                return changed
            process = replica.process
            code = process.poll() if process else None
            if code is not None:
                changed |= self._exited(replica_set, replica, code)
                continue
            if replica.address is None:
                replica.address = _read_address(replica_set, replica)
                if replica.address is None:
                    changed |= self._starting_too_long(replica_set, replica, now)
                    continue
            if replica.state == "starting":
                if probe_sync(replica.address, replica_set.liveness.timeout) == 200:
                    replica.state = "ready"
                    replica.failures = 0
                    replica.last_probe = now
                    changed = True
                else:
                    changed |= self._starting_too_long(replica_set, replica, now)
                continue
            lost = replica.address.id in self._lost
            self._lost.discard(replica.address.id)
            if lost or now - replica.last_probe >= replica_set.liveness.period:
                replica.last_probe = now
                if probe_sync(replica.address, replica_set.liveness.timeout) == 200:
                    replica.failures = 0
                else:
                    replica.failures += 1
                    if lost or replica.failures >= replica_set.liveness.failure_threshold:
                        log.warning(
                            "replica %s/%d failed its liveness probe; restarting",
                            replica_set.key,
                            replica.index,
                        )
                        self._restart(replica_set, replica, "failed its liveness probe")
                        changed = True
        return changed

    def _exited(self, replica_set: ReplicaSet, replica: Replica, code: int) -> bool:
        was_ready = replica.state == "ready"
        if replica.state == "starting" and code == INIT_FAILED:
            replica_set.failed = "init() failed:\n" + log_excerpt(replica.log_path)
            replica.state = "stopped"
            self._terminate(replica_set)
            return True
        log.warning(
            "replica %s/%d exited with status %s; restarting", replica_set.key, replica.index, code
        )
        self._restart(replica_set, replica, f"exited with status {code}")
        return was_ready

    def _starting_too_long(self, replica_set: ReplicaSet, replica: Replica, now: float) -> bool:
        if now - replica.started_at > replica_set.startup_timeout_s:
            replica_set.failed = (
                f"replica {replica.index} was not ready after "
                f"{replica_set.startup_timeout_s:.0f} s\n" + log_excerpt(replica.log_path)
            )
            self._terminate(replica_set)
            return True
        return False

    def _restart(self, replica_set: ReplicaSet, replica: Replica, why: str) -> None:
        if replica.process is not None and replica.process.poll() is None:
            kill_tree(replica.process.pid)
            replica.process.wait(timeout=5)
        replica.restarts += 1
        with replica.log_path.open("ab") as out:
            out.write(f"\n--- replica {why}; restart {replica.restarts} ---\n".encode())
        self._spawn(replica_set, replica)

    # Processes ---------------------------------------------------------------------
    def _spawn(self, replica_set: ReplicaSet, replica: Replica) -> None:
        folder = replica_set.folder
        port_file = folder / f"replica-{replica.index}.port"
        port_file.unlink(missing_ok=True)
        plan = {
            **replica_set.plan,
            "name": f"{replica_set.key}/{replica.index}",
            "port_file": str(port_file),
        }
        plan_path = folder / f"replica-{replica.index}.json"
        _write_private(plan_path, json.dumps(plan, indent=2))
        env = dict(replica_set.env)
        runtime = str(runtime_path(self.home))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (runtime, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["MILL_REPLICA_TOKEN"] = replica.token
        replica.address = None
        replica.state = "starting"
        replica.failures = 0
        replica.started_at = time.monotonic()
        with replica.log_path.open("ab") as out:
            replica.process = subprocess.Popen(
                [replica_set.python, "-m", f"{_RUNTIME_PACKAGE}.replica", str(plan_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=folder,
                start_new_session=True,
            )

    def _terminate(self, replica_set: ReplicaSet, grace_s: float = 5.0) -> None:
        for replica in replica_set.replicas:
            process = replica.process
            if process is None or process.poll() is not None:
                replica.state = "stopped"
                continue
            try:
                process.terminate()
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                kill_tree(process.pid)
                process.wait(timeout=5)
            replica.state = "stopped"


def log_excerpt(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _read_address(replica_set: ReplicaSet, replica: Replica) -> ReplicaAddress | None:
    try:
        data = json.loads((replica_set.folder / f"replica-{replica.index}.port").read_text())
    except (OSError, ValueError):
        return None
    return ReplicaAddress(
        id=f"{replica_set.key}/{replica.index}/{data['pid']}",
        host=str(replica_set.plan.get("host", "127.0.0.1")),
        port=int(data["port"]),
        token=replica.token,
    )


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)
