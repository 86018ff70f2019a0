"""What the control plane needs from a compute target: start a job, watch it, stop it.

A runner only launches the job bootstrap (``mill.runtime.bootstrap``) with a launch plan;
the bootstrap does the job's work and reports on it. So the interface stays three calls,
and a :class:`ProcessHandle` is all the control plane keeps (in its store) to find a job's
process again after it restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["ProcessHandle", "Runner"]


@dataclass(frozen=True)
class ProcessHandle:
    """A launched bootstrap process.

    ``start_ticks`` is the process start time (clock ticks since boot, from /proc) that
    tells this process from a later one given the same pid; None where it is unknown.
    """

    pid: int
    start_ticks: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessHandle:
        ticks = data.get("start_ticks")
        return cls(pid=int(data["pid"]), start_ticks=None if ticks is None else int(ticks))


class Runner(Protocol):
    """Launches job bootstraps on a compute target. Implementations: :class:`LocalRunner`."""

    def launch(
        self, plan: dict[str, Any], run_dir: Path, *, python: str | None = None
    ) -> ProcessHandle:
        """Write ``plan`` as ``run_dir/launch.json`` and start the bootstrap on it, in
        ``python`` (the job environment's interpreter; default: the runner's own)."""
        ...

    def is_alive(self, handle: ProcessHandle) -> bool:
        """Whether that very process (not a later one with its pid) still runs."""
        ...

    def terminate(self, handle: ProcessHandle, grace: float = 10.0) -> None:
        """Ask the bootstrap to cancel (it stops the job and writes result.json); after
        ``grace`` seconds kill whatever is left of its process tree."""
        ...
