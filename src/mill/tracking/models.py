"""MLflow 3 LoggedModels: ``/logged-models`` create, get, finalize, search, params, tags.

A model's files go through the artifact proxy under ``<experiment>/models/<model_id>/``
(its listing and file routes are in :mod:`mill.tracking.artifacts`). Its metrics are the
points a run logged with ``model_id``.
"""

from __future__ import annotations

from typing import Any

from mill.errors import UsageError
from mill.hashing import content_hash
from mill.store.logged_models import LoggedModelStore
from mill.store.tracking import SqlTrackingStore
from mill.tracking.api import Handler
from mill.tracking.wire import Args, num

__all__ = ["MODEL_ROUTES"]

_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


def _kv(items: list[Any]) -> dict[str, str]:
    return {str(i.get("key", "")): str(i.get("value", "")) for i in items}


def wire_model(model: dict[str, Any]) -> dict[str, Any]:
    skip = ("params", "tags", "metrics")
    info = {k: v for k, v in model.items() if k not in skip and v is not None}
    info["tags"] = [{"key": k, "value": v} for k, v in model["tags"].items()]
    params = [{"key": k, "value": v} for k, v in model["params"].items()]
    metrics = [
        {k: (num(v) if k == "value" else v) for k, v in m.items() if v is not None}
        for m in model["metrics"]
    ]
    return {"info": info, "data": {"params": params, "metrics": metrics}}


def create(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    model = LoggedModelStore(store).create(
        ws,
        a.str("experiment_id", required=True),
        a.str("name"),
        source_run_id=a.str("source_run_id") or _calling_job(a),
        model_type=a.str("model_type") or None,
        params=_kv(a.list("params")),
        tags=_kv(a.list("tags")),
    )
    return {"model": wire_model(model)}


def _calling_job(a: Args) -> str | None:
    """The run of the job making this call, by its token: MLflow 3's ``log_model`` with no
    active run (no ``mlflow.log_*`` or ``start_run`` before it) sends no run id, yet inside a
    job the model belongs to the job's run, as on Azure ML."""
    ctx = getattr(a.state, "ctx", None) if a.state is not None else None
    if not a.bearer or ctx is None:
        return None
    job = ctx.store.active_job_for_token(content_hash(a.bearer.encode()))
    return job.name if job is not None else None


def get(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    return {"model": wire_model(LoggedModelStore(store).get(ws, a.str("model_id", required=True)))}


def finalize(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    status = a.str("status", required=True)
    if status not in _STATUSES:
        raise UsageError(f"invalid logged model status {status!r}; allowed: {_STATUSES}")

    def change(values: dict[str, Any]) -> None:
        values["status"] = status

    model = LoggedModelStore(store).update(ws, a.str("model_id", required=True), change)
    return {"model": wire_model(model)}


def delete(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    def change(values: dict[str, Any]) -> None:
        values["lifecycle_stage"] = "deleted"

    LoggedModelStore(store).update(ws, a.str("model_id", required=True), change)
    return {}


def set_tags(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    tags = _kv(a.list("tags"))

    def change(values: dict[str, Any]) -> None:
        values["tags"].update(tags)

    LoggedModelStore(store).update(ws, a.str("model_id", required=True), change)
    return {}


def delete_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key = a.str("tag_key", required=True)

    def change(values: dict[str, Any]) -> None:
        values["tags"].pop(key, None)

    LoggedModelStore(store).update(ws, a.str("model_id", required=True), change)
    return {}


def log_params(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    params = _kv(a.list("params"))

    def change(values: dict[str, Any]) -> None:
        values["params"].update(params)

    LoggedModelStore(store).update(ws, a.str("model_id", required=True), change)
    return {}


def search(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    found = LoggedModelStore(store).search(
        ws,
        [str(e) for e in a.list("experiment_ids")],
        a.str("filter") or None,
        datasets=[d for d in a.list("datasets") if isinstance(d, dict)],
        order_by=a.list("order_by"),
    )
    limit = a.int("max_results", 100) or 100
    offset = int(a.str("page_token") or 0) if a.str("page_token").isdigit() else 0
    page = found[offset : offset + limit]
    more = {"next_page_token": str(offset + limit)} if len(found) > offset + limit else {}
    return {"models": [wire_model(m) for m in page], **more}


MODEL_ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/logged-models", create),
    ("POST", "/logged-models/search", search),
    ("GET", "/logged-models/{model_id}", get),
    ("PATCH", "/logged-models/{model_id}", finalize),
    ("DELETE", "/logged-models/{model_id}", delete),
    ("PATCH", "/logged-models/{model_id}/tags", set_tags),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", delete_tag),
    ("POST", "/logged-models/{model_id}/params", log_params),
]
