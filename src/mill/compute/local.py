"""The local runner: job bootstraps as child processes of the control plane's host.

Each job gets one bootstrap process (``python -S mill/runtime/bootstrap.py launch.json``)
in its own session, so the job can be stopped as a whole and outlives a control-plane
restart. The handle (pid + start time) is enough to find it again afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mill.compute.base import ProcessHandle
from mill.compute.processes import (
    ProcStat,
    descendants,
    has_proc,
    process_start_ticks,
    read_stat,
    signal_processes,
)
from mill.errors import MillError
from mill.runtime import bootstrap

__all__ = ["BOOTSTRAP_PATH", "LocalRunner", "write_private"]

BOOTSTRAP_PATH = Path(bootstrap.__file__).resolve()
_POLL = 0.05


def _job_environment() -> dict[str, str]:
    """The control plane's environment minus its own settings: ``MILL_*`` holds the
    database URL and the server token, which user code has no business seeing."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MILL_")}


def write_private(path: Path, text: str) -> None:
    """Write atomically with mode 0600 from the start: the plan holds the callback token."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


class LocalRunner:
    """Runs each job's bootstrap as a local process with the given Python interpreter.

    ``python`` is the default interpreter (the job environment's); :meth:`launch` takes
    another per job. ``env`` is the environment the bootstrap starts with (the plan's
    ``env`` is added on top by the bootstrap); by default ours without ``MILL_*``.
    """

    def __init__(self, python: str = sys.executable, env: Mapping[str, str] | None = None):
        self.python = python
        self._env = dict(env) if env is not None else None
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def launch(
        self, plan: dict[str, Any], run_dir: Path, *, python: str | None = None
    ) -> ProcessHandle:
        """Write ``run_dir/launch.json`` (0600) and start the bootstrap on it; its output
        (only its own crashes: the job logs elsewhere) goes to ``run_dir/bootstrap.log``."""
        run_dir = Path(run_dir).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        plan_path = run_dir / "launch.json"
        # Secret values (resolved ${{secrets.x}} references) never touch the disk: they go
        # to the bootstrap in its environment, which its user processes inherit.
        plan = dict(plan)
        secret_env = {str(k): str(v) for k, v in (plan.pop("secret_env", None) or {}).items()}
        write_private(plan_path, json.dumps(plan, indent=2))
        base_env = self._env if self._env is not None else _job_environment()
        interpreter = python or self.python
        argv = [interpreter, "-S", str(BOOTSTRAP_PATH), str(plan_path)]
        try:
            with open(run_dir / "bootstrap.log", "ab") as log:
                child = subprocess.Popen(
                    argv,
                    cwd=run_dir,
                    env={**base_env, **secret_env},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
        except OSError as exc:
            raise MillError(
                f"could not start the job bootstrap with {interpreter}: {exc.strerror or exc}",
                hint="check that the job environment's Python interpreter exists",
            ) from exc
        with self._lock:
            self._children[child.pid] = child
        return ProcessHandle(child.pid, process_start_ticks(child.pid))

    def is_alive(self, handle: ProcessHandle) -> bool:
        """True only for that very process: it exists, is not a zombie and started when the
        handle says (a reused pid is another process)."""
        with self._lock:
            child = self._children.get(handle.pid)
            if child is not None and child.poll() is not None:
                del self._children[handle.pid]  # reaped: no zombie left behind
                return False
        if not has_proc():
            try:
                os.kill(handle.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        stat = read_stat(handle.pid)
        if stat is None or stat.state in ("Z", "X"):
            return False
        return handle.start_ticks is None or stat.start_ticks == handle.start_ticks

    def terminate(self, handle: ProcessHandle, grace: float = 10.0) -> None:
        """SIGTERM the bootstrap (it stops the job's processes, saves outputs and writes
        result.json); after ``grace`` seconds, SIGKILL whatever is left of the tree."""
        if not self.is_alive(handle):
            return
        tree: dict[int, ProcStat | None] = dict(descendants(handle.pid))
        try:
            os.kill(handle.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace
        while self.is_alive(handle) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if self.is_alive(handle):
            # The root first, so no parent can wake to a child's death and act on it;
            # then what it started since we looked.
            tree = {handle.pid: read_stat(handle.pid), **tree, **descendants(handle.pid)}
        signal_processes(tree, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while self.is_alive(handle) and time.monotonic() < deadline:
            time.sleep(_POLL)  # is_alive reaps our child once it is gone
