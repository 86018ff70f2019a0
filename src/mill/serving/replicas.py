"""The replica supervisor: starts each deployment's replica processes, watches them, and
says which are ready to take traffic.

A :class:`ReplicaSet` is one generation of one deployment: ``count`` processes started from
the same plan in the deployment's environment. A replica is *starting* until its health
check answers 200 (``init()`` done), then *ready*; a ready replica that dies or fails its
liveness probe ``failure_threshold`` times is killed, taken out of traffic at once and
started again (it rejoins when ready). A replica that exits while starting with the
replica's ``INIT_FAILED`` status fails the whole set: ``init()`` is the user's code and
will fail the same way again, so the set reports the log excerpt instead of looping.

Probes follow Azure's fields: a ready replica failing its readiness probe for
``failure_threshold`` times ``period`` seconds leaves traffic (without a restart) until it
passes ``success_threshold`` times in a row; failing its liveness probe that long gets it
restarted. Both probe the replica's health route (``GET /``), as Azure's probes do.

With a ``target_utilization`` scale policy the set grows and shrinks between its bounds on
concurrency: every ``polling_interval`` the mean number of requests in flight or waiting
(sampled each tick from the gateway) is compared with ``target`` percent of the ready
replicas' capacity (``max_concurrent`` each). Above it the set grows at once to the size
that would meet the target; below half of it for three intervals in a row it sheds one
replica, which leaves traffic first and stops after draining.

Nothing here knows about endpoints' keys or traffic: whenever the ready replicas of a set
change, ``on_change(set)`` is called (from the supervisor's thread) and the caller builds
the gateway's route from :meth:`ReplicaSet.ready_addresses`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mill.compute.local import write_private
from mill.compute.processes import kill_tree
from mill.serving.gateway import ReplicaAddress
from mill.serving.upstream import probe_sync

__all__ = [
    "INIT_FAILED",
    "ProbeSettings",
    "Replica",
    "ReplicaSet",
    "ScalePolicy",
    "Supervisor",
    "log_excerpt",
    "runtime_path",
]

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


@dataclass(frozen=True)
class ScalePolicy:
    """``scale_settings: {type: target_utilization, ...}`` on concurrency."""

    min_instances: int
    max_instances: int
    polling_interval: float = 1.0
    target_utilization: float = 70.0  # percent of the ready replicas' concurrent capacity
    max_concurrent: int = 1
    scale_down_after: int = 3  # intervals in a row under half the target


@dataclass
class Replica:
    index: int
    token: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    address: ReplicaAddress | None = None
    state: str = "starting"  # starting | ready | unready | draining | stopped
    started_at: float = 0.0
    last_probe: float = 0.0
    failing_since: float | None = None  # first failed probe of the current failing streak
    passes: int = 0  # probes passed in a row while unready
    restarts: int = 0
    drained_at: float = 0.0  # when a draining replica may be stopped


@dataclass(eq=False)  # compared and hashed by identity: a set is one running generation
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
    readiness: ProbeSettings = field(default_factory=ProbeSettings)
    scale: ScalePolicy | None = None
    startup_timeout_s: float = 600.0
    drain_s: float = 6.0  # how long requests in flight may take once the set is retired
    replicas: list[Replica] = field(default_factory=list)
    failed: str | None = None  # why the set cannot serve (init() failed, start timed out)
    stopping: bool = False
    live: bool = False  # every replica was ready once: the set has served
    load_samples: list[int] = field(default_factory=list)
    last_scaled: float = 0.0
    low_intervals: int = 0

    @property
    def serving(self) -> list[Replica]:
        """The replicas that count towards the set's size (not draining or stopped)."""
        return [r for r in self.replicas if r.state not in ("draining", "stopped")]

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
            if r.state != "stopped"
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

    def __init__(
        self,
        home: Path,
        on_change: Callable[[ReplicaSet], None],
        load: Callable[[str, str], int] | None = None,
    ) -> None:
        self.home = home
        self.on_change = on_change
        self.load = load  # requests in flight or waiting for (endpoint, deployment)
        self._sets: dict[str, ReplicaSet] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._lost: set[str] = set()  # replica ids the gateway lost its connection to
        self._draining: dict[ReplicaSet, threading.Timer] = {}  # retired, not yet stopped
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
            draining = list(self._draining.items())
            self._draining.clear()
        for replica_set, timer in draining:  # retired sets still draining: stop them now
            timer.cancel()
            sets.append(replica_set)
        for replica_set in sets:
            self._terminate(replica_set, grace_s=2)

    # Sets --------------------------------------------------------------------------
    def launch(self, replica_set: ReplicaSet) -> None:
        """Start every replica of the set; :meth:`wait_ready` tells when they serve."""
        replica_set.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(replica_set.count):
            self._add_replica(replica_set)
        replica_set.last_scaled = time.monotonic()
        with self._lock:
            self._sets[replica_set.key] = replica_set

    def wait_ready(self, replica_set: ReplicaSet, timeout_s: float) -> None:
        """Block until every replica is ready; raise ``RuntimeError`` with the reason (and
        the log's last lines) when the set failed or the time ran out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if replica_set.failed:
                raise RuntimeError(replica_set.failed)
            if all(r.state == "ready" for r in replica_set.serving):
                replica_set.live = True
                return
            time.sleep(0.05)
        starting = [r for r in replica_set.replicas if r.state != "ready"]
        excerpt = log_excerpt(starting[0].log_path) if starting else ""
        replica_set.failed = (
            f"{len(starting)} of {replica_set.count} replica(s) were not ready after "
            f"{timeout_s:.0f} s (init() still running?)" + (f"\n{excerpt}" if excerpt else "")
        )
        raise RuntimeError(replica_set.failed)

    def retire(
        self, replica_set: ReplicaSet, drain_s: float = 0.0, *, remove_files: bool = True
    ) -> None:
        """Stop a set (after ``drain_s`` seconds, so requests in flight finish), then delete
        its folder (staged code and model links, plans, logs) unless told to keep it."""
        replica_set.stopping = True
        with self._lock:
            self._sets.pop(replica_set.key, None)

        def finish() -> None:
            with self._lock:
                self._draining.pop(replica_set, None)
            self._terminate(replica_set)
            if remove_files:
                shutil.rmtree(replica_set.folder, ignore_errors=True)

        if drain_s > 0:
            timer = threading.Timer(drain_s, finish)
            timer.daemon = True
            with self._lock:  # stop() ends draining sets too, so none outlives the server
                self._draining[replica_set] = timer
            timer.start()
        else:
            finish()

    def reap_orphans(self, root: Path) -> list[int]:
        """Kill replicas a previous control plane left running (it was killed, so it could
        not stop them): every live process named by a port file under ``root`` whose command
        line is a Mill replica's. Returns the pids killed."""
        killed: list[int] = []
        for port_file in root.glob("*/*/g*/replica-*.port"):
            try:
                pid = int(json.loads(port_file.read_text())["pid"])
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().split(b"\0")
            except (OSError, ValueError, KeyError):
                continue
            plan = str(port_file.with_suffix(".json")).encode()
            if f"{_RUNTIME_PACKAGE}.replica".encode() in command and plan in command:
                kill_tree(pid)
                killed.append(pid)
        return killed

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
                    changed = self._check(replica_set)
                    changed |= self._autoscale(replica_set)
                    if changed:
                        self.on_change(replica_set)
                except Exception:  # one bad set must not stop the supervision of others
                    log.exception("supervising %s failed", replica_set.key)

    def _check(self, replica_set: ReplicaSet) -> bool:
        """One look at every replica; True when the ready ones changed."""
        changed = False
        now = time.monotonic()
        for replica in list(replica_set.replicas):
            if replica_set.stopping or replica_set.failed:
                return changed
            if replica.state == "stopped":
                continue
            if replica.state == "draining":
                if now >= replica.drained_at:
                    self._stop_replica(replica)
                continue
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
                    replica.failing_since = None
                    replica.last_probe = now
                    changed = True
                else:
                    changed |= self._starting_too_long(replica_set, replica, now)
                continue
            changed |= self._probe(replica_set, replica, now)
        return changed

    def _probe(self, replica_set: ReplicaSet, replica: Replica, now: float) -> bool:
        """Readiness and liveness of a started replica; True when it entered or left traffic."""
        assert replica.address is not None
        live, ready = replica_set.liveness, replica_set.readiness
        lost = replica.address.id in self._lost
        self._lost.discard(replica.address.id)
        if not lost and now - replica.last_probe < min(live.period, ready.period):
            return False
        replica.last_probe = now
        timeout = min(live.timeout, ready.timeout)
        if probe_sync(replica.address, timeout) == 200:
            replica.failing_since = None
            if replica.state == "unready":
                replica.passes += 1
                if replica.passes >= ready.success_threshold:
                    replica.state = "ready"
                    return True
            return False
        replica.passes = 0
        if replica.failing_since is None:
            replica.failing_since = now
        failing_for = now - replica.failing_since
        if lost or failing_for >= (live.failure_threshold - 1) * live.period:
            log.warning(
                "replica %s/%d failed its liveness probe; restarting",
                replica_set.key,
                replica.index,
            )
            self._restart(replica_set, replica, "failed its liveness probe")
            return True
        if replica.state == "ready" and failing_for >= (ready.failure_threshold - 1) * ready.period:
            log.warning(
                "replica %s/%d is not ready; out of traffic", replica_set.key, replica.index
            )
            replica.state = "unready"
            return True
        return False

    # Autoscaling -------------------------------------------------------------------
    def _autoscale(self, replica_set: ReplicaSet) -> bool:
        policy = replica_set.scale
        if policy is None or self.load is None or replica_set.stopping or replica_set.failed:
            return False
        replica_set.load_samples.append(self.load(replica_set.endpoint, replica_set.deployment))
        now = time.monotonic()
        if now - replica_set.last_scaled < policy.polling_interval:
            return False
        samples, replica_set.load_samples = replica_set.load_samples, []
        replica_set.last_scaled = now
        mean = sum(samples) / len(samples)
        serving = replica_set.serving
        ready = sum(1 for r in serving if r.state == "ready")
        capacity = max(ready, 1) * policy.max_concurrent
        utilization = 100.0 * mean / capacity
        if utilization > policy.target_utilization:
            replica_set.low_intervals = 0
            wanted = math.ceil(mean * 100.0 / (policy.target_utilization * policy.max_concurrent))
            wanted = min(policy.max_instances, max(wanted, len(serving)))
            for _ in range(wanted - len(serving)):
                self._add_replica(replica_set)
            if wanted > len(serving):
                log.info("scaled %s up to %d replicas", replica_set.key, wanted)
            return False  # the new replicas join traffic when they are ready
        if utilization < policy.target_utilization / 2 and len(serving) > policy.min_instances:
            replica_set.low_intervals += 1
            if replica_set.low_intervals >= policy.scale_down_after:
                replica_set.low_intervals = 0
                victim = max(serving, key=lambda r: r.index)
                victim.state = "draining"
                victim.drained_at = now + replica_set.drain_s
                log.info("scaled %s down to %d replicas", replica_set.key, len(serving) - 1)
                return True
        else:
            replica_set.low_intervals = 0
        return False

    def _add_replica(self, replica_set: ReplicaSet) -> Replica:
        index = max((r.index for r in replica_set.replicas), default=-1) + 1
        replica = Replica(
            index=index,
            token=secrets.token_urlsafe(24),
            log_path=replica_set.folder / f"replica-{index}.log",
        )
        replica_set.replicas.append(replica)
        self._spawn(replica_set, replica)
        return replica

    def _exited(self, replica_set: ReplicaSet, replica: Replica, code: int) -> bool:
        was_ready = replica.state == "ready"
        if replica.state == "starting" and code == INIT_FAILED and not replica_set.live:
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
        write_private(plan_path, json.dumps(plan, indent=2))
        env = dict(replica_set.env)
        runtime = str(runtime_path(self.home))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (runtime, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        env["MILL_REPLICA_TOKEN"] = replica.token
        replica.address = None
        replica.state = "starting"
        replica.failing_since = None
        replica.passes = 0
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
            self._stop_replica(replica, grace_s)

    @staticmethod
    def _stop_replica(replica: Replica, grace_s: float = 5.0) -> None:
        process = replica.process
        replica.state = "stopped"
        if process is None or process.poll() is not None:
            return
        try:
            process.terminate()
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
            process.wait(timeout=5)


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
