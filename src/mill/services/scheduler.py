"""The scheduler and supervisor: one reconciling loop on the control plane.

Each pass (on a nudge, or every half second) it
1. queues new jobs,
2. starts queued jobs in submission order while their compute has free slots (strict
   first-in-first-out per compute: a job that does not fit holds back the ones behind it),
3. watches started jobs: a job whose process is gone is settled from its result file, or
   failed with a reason, so no job stays Running forever.
The loop holds no state of its own: everything is read from the store, so a restarted
control plane simply carries on (re-adopting live job processes, see :func:`recover`).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from mill.compute.base import ProcessHandle
from mill.domain.entities import Job
from mill.domain.status import ACTIVE, TERMINAL, JobStatus
from mill.errors import MillError
from mill.services import building, computes, jobs, staging
from mill.services.context import Context
from mill.services.launch import build_plan, new_token

__all__ = ["Scheduler", "recover"]

log = logging.getLogger("mill.scheduler")

_TICK_SECONDS = 0.5
_UNFINISHED = frozenset(JobStatus) - TERMINAL  # the jobs a pass can act on


class Scheduler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="mill-scheduler", daemon=True)
        # Environment builds take seconds to minutes: they never hold up the loop.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mill-build")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.ctx.wakeup.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.ctx.wakeup.wait(_TICK_SECONDS)
            self.ctx.wakeup.clear()
            try:
                self.tick()
            except Exception:  # the loop must survive anything one pass meets
                log.exception("scheduler pass failed")

    def tick(self) -> None:
        # Nothing to queue, start or watch: one indexed probe instead of a pass (seven
        # queries, 5.7 ms on PostgreSQL, measured), twice a second while the server idles.
        if not self.ctx.store.any_job_in(_UNFINISHED):
            return
        self._queue_new()
        self._start_queued()
        self._supervise()

    def _queue_new(self) -> None:
        for job in self.ctx.store.jobs_in([JobStatus.NOT_STARTED]):
            self.ctx.store.transition(job.stored_id, JobStatus.QUEUED)

    def _start_queued(self) -> None:
        used = self.ctx.store.active_slots()
        blocked: set[tuple[str, str]] = set()
        limits: dict[tuple[str, str], int] = {}  # looked up once per compute per pass
        for job in self.ctx.store.jobs_in([JobStatus.QUEUED]):
            key = (job.workspace, job.compute)
            if key in blocked:
                continue
            if key not in limits:
                try:
                    limits[key] = computes.resolve(self.ctx, *key).max_instances
                except MillError as exc:  # the compute was deleted while the job waited
                    self._fail(job, f"cannot start: {exc.message}")
                    continue
            limit = limits[key]
            if used.get(key, 0) + job.slots > limit:
                blocked.add(key)
                continue
            if self._launch(job):
                used[key] = used.get(key, 0) + job.slots

    def _launch(self, job: Job) -> bool:
        """Take the job's slots (Preparing) and start it; a build first runs in the pool."""
        token, token_hash = new_token()
        run_dir = self.ctx.run_dir(job.workspace, job.name)
        # Record the token before the process can call back with it.
        moved = self.ctx.store.transition(
            job.stored_id, JobStatus.PREPARING, callback_token_hash=token_hash, run_dir=str(run_dir)
        )
        if moved is None:  # canceled in the meantime
            return False
        if _builds(job) or self._stages_data(job):
            self._pool.submit(self._prepare_then_start, moved, token)
        else:
            self._start(moved, token, _python(job))
        return True

    def _stages_data(self, job: Job) -> bool:
        """Whether an input must be fetched from remote storage first (which takes time)."""
        for spec in (job.spec.get("inputs") or {}).values():
            path = spec.get("path")
            if path and spec.get("mode") != "direct":
                try:
                    if staging.is_remote(self.ctx, job.workspace, str(path)):
                        return True
                except MillError:
                    return True  # let the pool's start report it
        return False

    def _prepare_then_start(self, job: Job, token: str) -> None:
        """In the pool: build the environment (if it is a virtualenv), then stage and start."""
        try:
            python = building.build_for_job(self.ctx, job) if _builds(job) else _python(job)
        except MillError as exc:
            self._fail(job, exc.message)
            return
        except Exception as exc:  # a build must never take the scheduler's pool down
            log.exception("environment build for %s failed", job.name)
            self._fail(job, f"environment build failed: {exc}")
            return
        current = self.ctx.store.get_job_by_id(job.stored_id)
        if current.status != JobStatus.PREPARING:  # canceled while it built
            return
        self._start(current, token, python)
        self.ctx.wakeup.set()

    def _start(self, job: Job, token: str, python: str | None) -> None:
        run_dir = self.ctx.run_dir(job.workspace, job.name)
        try:
            plan = build_plan(self.ctx, job, token, python)
            handle = self.ctx.runner.launch(plan, run_dir, python=python)
        except MillError as exc:
            self._fail(job, f"cannot start: {exc.message}")
            return
        except OSError as exc:
            self._fail(job, f"could not start the job process: {exc}")
            return
        except Exception as exc:  # staging inputs talks to storage: never lose the job
            log.exception("starting job %s failed", job.name)
            self._fail(job, f"cannot start: {exc}")
            return

        def record(j: Job) -> bool:
            j.handle = handle.to_dict()
            return True

        self.ctx.store.update_job(job.stored_id, record)
        log.info("started job %s (pid %s)", job.name, handle.pid)

    def _supervise(self) -> None:
        for job in self.ctx.store.jobs_in(ACTIVE):
            if not job.handle:
                continue  # its environment is being built, or it is being launched
            if self.ctx.runner.is_alive(ProcessHandle.from_dict(job.handle)):
                continue
            jobs.finish_from_result(
                self.ctx,
                job,
                JobStatus.FAILED,
                f"the job process (pid {job.handle.get('pid')}) ended without reporting a result",
            )

    def _fail(self, job: Job, reason: str) -> None:
        error = {"code": "SystemError", "message": reason}
        jobs.settle(self.ctx, job.stored_id, JobStatus.FAILED, error=error)


def _builds(job: Job) -> bool:
    return (job.environment_info or {}).get("kind") == "virtualenv"


def _python(job: Job) -> str | None:
    python: str | None = ((job.environment_info or {}).get("resolved") or {}).get("python_path")
    return python


def recover(ctx: Context) -> dict[str, int]:
    """On start: re-adopt job processes that are still alive, settle the ones that are gone."""
    adopted = settled = 0
    for job in ctx.store.jobs_in(ACTIVE):
        handle = ProcessHandle.from_dict(job.handle) if job.handle else None
        if handle is not None and ctx.runner.is_alive(handle):
            adopted += 1
            log.info("re-adopted job %s (pid %s)", job.name, handle.pid)
            continue
        reason = (
            f"the control plane restarted and the job process (pid {handle.pid}) "
            "was no longer running"
            if handle
            else "the control plane restarted before the job started (during its environment "
            "build); submit it again"
        )
        jobs.finish_from_result(ctx, job, JobStatus.FAILED, reason)
        settled += 1
    return {"adopted": adopted, "settled": settled, "at": int(time.time())}
