"""Every job is an MLflow run: run id = job name, in the experiment named by the job.

The job's literal inputs are the run's params; the run ends when the job settles.
"""

from __future__ import annotations

import logging
from typing import Any

from mill.domain.entities import Job
from mill.domain.status import JobStatus
from mill.errors import ConflictError, NotFoundError
from mill.services.context import Context

__all__ = ["MLFLOW_STATUS", "check_run_id_free", "end_run", "start_run", "tracking_uri"]

log = logging.getLogger("mill.runs")

MLFLOW_STATUS = {
    JobStatus.COMPLETED: "FINISHED",
    JobStatus.FAILED: "FAILED",
    JobStatus.CANCELED: "KILLED",
}
_LITERALS = ("string", "integer", "number", "boolean")


def tracking_uri(ctx: Context, workspace: str) -> str:
    """What `mlflow.set_tracking_uri` takes to log into this workspace."""
    return f"{ctx.server_url}/workspaces/{workspace}" if ctx.server_url else ""


def check_run_id_free(ctx: Context, job_name: str) -> None:
    """Run ids are global while job names are per workspace: refuse a name another
    workspace's job (or a notebook's run) already uses as its run id."""
    try:
        ctx.tracking.get_run(job_name)
    except NotFoundError:
        return
    raise ConflictError(
        f"the name {job_name!r} is already the id of an MLflow run (a job in another "
        "workspace, or a run logged directly)",
        hint="pick another --name, or leave it out to get a generated one",
    )


def start_run(ctx: Context, job: Job) -> str:
    """Create the job's run (and its experiment if new); returns the experiment id."""
    experiment_id = ctx.tracking.ensure_experiment(job.workspace, job.experiment_name)
    ctx.tracking.create_run(
        job.workspace,
        experiment_id,
        run_id=job.name,
        run_name=job.display_name or job.name,
        start_time=int(job.created_at * 1000),
        tags={
            "mlflow.source.type": "JOB",
            "mlflow.source.name": str(job.spec.get("command", ""))[:500],
            "mill.job": job.name,
            **{k: str(v) for k, v in job.tags.items()},
        },
    )
    params = {
        name: _literal(spec.get("value"))
        for name, spec in (job.spec.get("inputs") or {}).items()
        if spec.get("type") in _LITERALS and spec.get("value") is not None
    }
    if params:
        ctx.tracking.log_params(job.name, params)
    return experiment_id


def end_run(ctx: Context, job: Job) -> None:
    """Mark the job's run ended like the job; tracking must never block a job's settling."""
    status = MLFLOW_STATUS.get(job.status)
    if status is None:
        return
    try:
        end = int((job.ended_at or 0) * 1000) or None
        ctx.tracking.set_terminated(job.name, status, end)
    except Exception:  # a run deleted by the user, a database hiccup: the job still settles
        log.warning("could not end the run of job %s", job.name, exc_info=True)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
