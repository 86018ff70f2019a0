"""Experiments and job metrics, as `mill experiment ...` and `mill job metrics|compare` show them.

The MLflow API serves the same data to the mlflow client; this module is the az-style view.
"""

from __future__ import annotations

import math
from typing import Any

from mill.errors import MillError, NotFoundError, SpecError
from mill.services import jobs
from mill.services.context import Context
from mill.services.formats import iso
from mill.store.sql import JobQuery

__all__ = ["archive", "compare", "job_metrics", "list_all", "search_jobs", "show"]


def list_all(ctx: Context, workspace: str, include_archived: bool = False) -> list[dict[str, Any]]:
    view = "ALL" if include_archived else "ACTIVE_ONLY"
    found, _ = ctx.tracking.search_experiments(workspace, view_type=view, max_results=1000)
    return [_experiment(e) for e in found]


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    experiment = ctx.tracking.get_experiment_by_name(workspace, name, missing_ok=True)
    if experiment is None:
        raise NotFoundError(f"experiment {name!r} not found in workspace {workspace!r}")
    data = _experiment(experiment)
    recent = ctx.store.list_jobs(workspace, JobQuery(experiment_name=name, limit=20))
    data["jobs"] = [{"name": j.name, "status": j.status.value} for j in recent]
    return data


def archive(ctx: Context, workspace: str, name: str, archived: bool = True) -> None:
    experiment = ctx.tracking.get_experiment_by_name(workspace, name, missing_ok=True)
    if experiment is None:
        raise NotFoundError(f"experiment {name!r} not found in workspace {workspace!r}")
    stage = "deleted" if archived else "active"  # MLflow's delete is an archive: it can be restored
    ctx.tracking.set_experiment_lifecycle(workspace, str(experiment["experiment_id"]), stage)


def job_metrics(
    ctx: Context, workspace: str, name: str, history: str | None = None
) -> dict[str, Any]:
    job = ctx.store.get_job(workspace, name)
    if history is None:
        return {"name": job.name, "metrics": _clean(ctx.tracking.latest_metrics(job.name))}
    points = ctx.tracking.metric_history(job.name, history, workspace)
    if not points:
        known = ", ".join(sorted(ctx.tracking.latest_metrics(job.name))) or "none logged"
        raise NotFoundError(f"job {name!r} has no metric {history!r}; its metrics: {known}")
    return {
        "name": job.name,
        "key": history,
        "history": [
            {"step": step, "value": None if nan else value, "timestamp": iso(ts / 1000)}
            for value, ts, step, nan in points
        ],
    }


def search_jobs(
    ctx: Context,
    workspace: str,
    query: JobQuery,
    filter_string: str | None,
    order_by: list[str] | None,
) -> list[dict[str, Any]]:
    """Jobs chosen and ordered by their runs' metrics, params, tags (MLflow's search syntax)."""
    if query.experiment_name:
        experiment = ctx.tracking.get_experiment_by_name(
            workspace, query.experiment_name, missing_ok=True
        )
        experiments = [experiment] if experiment else []
    else:
        experiments, _ = ctx.tracking.search_experiments(workspace, max_results=1000)
    if not experiments:
        return []
    try:
        found, _ = ctx.tracking.search_runs(
            workspace,
            [str(e["experiment_id"]) for e in experiments],
            filter_string or "",
            order_by or None,
            max_results=query.limit,
        )
    except MillError as exc:  # the tracking store's errors name the bad part of the filter
        raise SpecError.one(exc.message, field="--filter/--order-by", value=filter_string) from exc
    out = []
    for run in found:
        run_id = run["info"]["run_id"]
        try:
            job = ctx.store.get_job(workspace, run_id)
        except NotFoundError:
            continue  # a run logged from a notebook, not a job
        if (job.archived and not query.include_archived) or (
            query.status and job.status.value != query.status
        ):
            continue
        out.append(jobs.read(ctx, job))
    return out


def compare(ctx: Context, workspace: str, names: list[str]) -> dict[str, Any]:
    """Params and latest metrics of several jobs side by side; ``differs`` lists what varies."""
    if len(names) < 2:
        raise SpecError.one("compare needs at least two jobs", field="names", value=names)
    for name in names:
        ctx.store.get_job(workspace, name)  # a clear not-found for each unknown job
    params = {n: ctx.tracking.params(n) for n in names}
    metrics = {n: _clean(ctx.tracking.latest_metrics(n)) for n in names}

    def table(per_job: dict[str, dict[str, Any]]) -> dict[str, Any]:
        keys = sorted({k for values in per_job.values() for k in values})
        rows = {k: [per_job[n].get(k) for n in names] for k in keys}
        return {
            "values": rows,
            "differs": [k for k, v in rows.items() if len({repr(x) for x in v}) > 1],
        }

    return {"jobs": names, "params": table(params), "metrics": table(metrics)}


def _experiment(e: dict[str, Any]) -> dict[str, Any]:
    created = e.get("creation_time")
    return {
        "name": e["name"],
        "experiment_id": str(e["experiment_id"]),
        "lifecycle_stage": e.get("lifecycle_stage"),
        "artifact_location": e.get("artifact_location"),
        "tags": {t["key"]: t["value"] for t in e.get("tags", [])},
        "creation_context": {"created_at": iso(created / 1000) if created else None},
    }


def _clean(metrics: dict[str, float]) -> dict[str, float | None]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()}
