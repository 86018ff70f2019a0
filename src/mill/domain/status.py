"""The job status state machine, with the names Azure ML uses."""

from __future__ import annotations

from enum import Enum

__all__ = ["ACTIVE", "TERMINAL", "JobStatus", "can_move"]


class JobStatus(str, Enum):
    NOT_STARTED = "NotStarted"
    QUEUED = "Queued"
    PREPARING = "Preparing"
    RUNNING = "Running"
    FINALIZING = "Finalizing"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    def __str__(self) -> str:
        return self.value


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})
# A job holds compute slots while it is in one of these states.
ACTIVE = frozenset({JobStatus.PREPARING, JobStatus.RUNNING, JobStatus.FINALIZING})

_ORDER = {
    JobStatus.NOT_STARTED: 0,
    JobStatus.QUEUED: 1,
    JobStatus.PREPARING: 2,
    JobStatus.RUNNING: 3,
    JobStatus.FINALIZING: 4,
}


def can_move(current: JobStatus, new: JobStatus) -> bool:
    """Statuses only move forward; a terminal status is final.

    Events from a job process can arrive late or twice (retries), so a transition to
    an earlier or equal status is simply not applied rather than being an error.
    """
    if current in TERMINAL:
        return False
    if new in TERMINAL:
        return True
    return _ORDER[new] > _ORDER[current]
