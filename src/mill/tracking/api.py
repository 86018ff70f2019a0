"""The MLflow tracking REST API (``/api/2.0/mlflow/...``): experiments, runs, metrics.

Each handler takes the tracking store, the workspace and the request's :class:`Args`,
and returns the JSON body MLflow's client expects; handlers run in the thread pool.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, get_route_path
from starlette.types import Receive, Scope, Send

from mill.errors import NotSupportedError, UsageError
from mill.store.tracking import DELETED, SqlTrackingStore
from mill.tracking.wire import Args, Endpoint, MlflowRoute, guarded, num, request_args

__all__ = [
    "REGISTRY_MESSAGE",
    "TRACING_MESSAGE",
    "FixedPathRoute",
    "build_tracking_router",
    "build_unserved_router",
    "tracking_store",
]

Handler = Callable[[SqlTrackingStore, str, Args], Any]

MAX_METRICS, MAX_PARAMS, MAX_TAGS, MAX_ENTITIES = 1000, 100, 100, 1000
REGISTRY_MESSAGE = "this MLflow model registry endpoint is not implemented by Mill"
TRACING_MESSAGE = (
    "MLflow tracing (traces, spans) is not supported by Mill: traces are not recorded; "
    "runs, metrics, params, artifacts and models are"
)


def tracking_store(request: Request) -> SqlTrackingStore:
    """The app's tracking store, made once from the app's ``SqlStore`` when first needed."""
    state = request.app.state
    store: SqlTrackingStore | None = getattr(state, "tracking_store", None)
    if store is None:
        store = SqlTrackingStore(state.ctx.store)
        state.tracking_store = store
    return store


def workspace_of(request: Request) -> str:
    return str(request.path_params.get("ws") or "default")


# Experiments ----------------------------------------------------------------------
def create_experiment(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    tags = {t["key"]: t.get("value", "") for t in a.list("tags")}
    name = a.str("name", required=True)
    return {
        "experiment_id": store.create_experiment(ws, name, a.str("artifact_location") or None, tags)
    }


def get_experiment(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    return {"experiment": store.get_experiment(ws, a.str("experiment_id", required=True))}


def get_experiment_by_name(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    return {"experiment": store.get_experiment_by_name(ws, a.str("experiment_name", required=True))}


def search_experiments(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    found, token = store.search_experiments(
        ws,
        view_type=_view_type(a.data.get("view_type")),
        max_results=a.int("max_results", 1000) or 1000,
        filter_string=a.str("filter") or None,
        order_by=[str(o) for o in a.list("order_by")],
        page_token=a.str("page_token") or None,
    )
    return {"experiments": found, **({"next_page_token": token} if token else {})}


def update_experiment(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.update_experiment(ws, a.str("experiment_id", required=True), a.str("new_name"))
    return {}


def delete_experiment(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_experiment_lifecycle(ws, a.str("experiment_id", required=True), DELETED)
    return {}


def restore_experiment(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_experiment_lifecycle(ws, a.str("experiment_id", required=True), "active")
    return {}


def set_experiment_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_experiment_tag(
        ws, a.str("experiment_id", required=True), a.str("key", required=True), a.str("value")
    )
    return {}


def delete_experiment_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.delete_experiment_tag(
        ws, a.str("experiment_id", required=True), a.str("key", required=True)
    )
    return {}


# Runs -----------------------------------------------------------------------------
def create_run(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    tags = {t["key"]: str(t.get("value", "")) for t in a.list("tags")}
    run = store.create_run(
        ws,
        a.str("experiment_id") or "0",
        run_name=a.str("run_name") or None,
        start_time=a.int("start_time"),
        tags=tags,
        user_id=a.str("user_id") or None,
    )
    return {"run": wire_run(run)}


def get_run(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    return {"run": wire_run(store.get_run(_run_id(a), ws))}


def update_run(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    info = store.update_run(
        _run_id(a),
        status=a.str("status") or None,
        end_time=a.int("end_time"),
        run_name=a.str("run_name") or None,
        workspace=ws,
    )
    return {"run_info": _info(info)}


def delete_run(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_run_lifecycle(_run_id(a), DELETED, ws)
    return {}


def restore_run(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_run_lifecycle(_run_id(a), "active", ws)
    return {}


def search_runs(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    runs, token = store.search_runs(
        ws,
        [str(e) for e in a.list("experiment_ids")],
        a.str("filter") or None,
        [str(o) for o in a.list("order_by")],
        a.int("max_results", 1000) or 1000,
        a.str("page_token") or None,
        _view_type(a.data.get("run_view_type")),
    )
    return {"runs": [wire_run(r) for r in runs], **({"next_page_token": token} if token else {})}


def log_metric(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    metric = {
        "key": a.str("key", required=True),
        "value": a.data.get("value"),
        "timestamp": a.int("timestamp"),
        "step": a.int("step", 0),
        "model_id": a.str("model_id") or None,
        "dataset_name": a.str("dataset_name") or None,
        "dataset_digest": a.str("dataset_digest") or None,
    }
    store.log_batch(_run_id(a), [metric], workspace=ws)
    return {}


def log_param(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.log_params(_run_id(a), {a.str("key", required=True): a.str("value")}, workspace=ws)
    return {}


def set_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.set_tag(_run_id(a), a.str("key", required=True), a.str("value"), workspace=ws)
    return {}


def delete_tag(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    store.delete_tag(_run_id(a), a.str("key", required=True), workspace=ws)
    return {}


def log_model(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    """MLflow's ``runs/log-model``: both client generations send it after saving a model's
    files, and warn that "logging model metadata failed" when a server lacks it."""
    text = a.str("model_json", required=True)
    try:
        model = json.loads(text)
    except ValueError:
        model = None
    if not isinstance(model, dict):
        raise UsageError(f"Malformed model info. \n {text[:200]} \n is not a valid JSON object.")
    missing = {"artifact_path", "flavors", "utc_time_created", "run_id"} - set(model)
    if missing:
        raise UsageError(f"Model json is missing mandatory fields: {sorted(missing)}")
    store.record_logged_model(_run_id(a), model, workspace=ws)
    return {}


def log_batch(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    metrics, params, tags = a.list("metrics"), a.list("params"), a.list("tags")
    for what, items, limit in (
        ("metrics", metrics, MAX_METRICS),
        ("params", params, MAX_PARAMS),
        ("tags", tags, MAX_TAGS),
    ):
        if len(items) > limit:
            raise UsageError(
                f"A batch logging request can contain at most {limit} {what}. "
                f"Got {len(items)} {what}. Please split up {what} across multiple requests "
                "and try again."
            )
    total = len(metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES:
        raise UsageError(
            f"A batch logging request can contain at most {MAX_ENTITIES} metrics, params and "
            f"tags in total. Got {total}."
        )
    param_map: dict[str, str] = {}
    for p in params:
        key, value = str(p.get("key", "")), str(p.get("value", ""))
        if param_map.get(key, value) != value:
            raise UsageError(f"Duplicate parameter keys have been submitted: {key!r}")
        param_map[key] = value
    store.log_batch(
        _run_id(a),
        metrics,
        params=param_map,
        tags={str(t.get("key", "")): str(t.get("value", "")) for t in tags},
        workspace=ws,
    )
    return {}


def log_inputs(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    items: list[tuple[str, str, dict[str, Any]]] = []
    for d in a.list("datasets"):
        dataset = d.get("dataset") or {}
        digest = f"{dataset.get('name', '')}:{dataset.get('digest', '')}:{_digest(d.get('tags'))}"
        items.append(("dataset", digest, d))
    for m in a.list("models"):
        items.append(("model", str(m.get("model_id", "")), {"model_id": m.get("model_id")}))
    store.log_inputs(_run_id(a), items, workspace=ws)
    return {}


def log_outputs(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    items = [
        ("model_output", f"{m.get('model_id')}:{m.get('step', 0)}", dict(m))
        for m in a.list("models")
    ]
    store.log_inputs(_run_id(a), items, workspace=ws)
    return {}


# Metrics --------------------------------------------------------------------------
def get_metric_history(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key = a.str("metric_key", required=True)
    rows, token = store.metric_history_page(
        _run_id(a),
        key,
        workspace=ws,
        max_results=a.int("max_results"),
        page_token=a.str("page_token"),
    )
    # Built by hand: 100,000 points through json.dumps of dicts is several times slower.
    key_json = json.dumps(key)
    parts = [
        f'{{"key":{key_json},"value":{_num_json(v, nan)},"timestamp":{t},"step":{s}}}'
        for v, t, s, nan in rows
    ]
    more = f',"next_page_token":{json.dumps(token)}' if token else ""
    return Response(
        '{"metrics":[' + ",".join(parts) + "]" + more + "}", media_type="application/json"
    )


def get_metric_history_bulk_interval(store: SqlTrackingStore, ws: str, a: Args) -> Any:
    key = a.str("metric_key", required=True)
    run_ids = [str(r) for r in a.list("run_ids")]
    if not run_ids:
        raise UsageError("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > 100:
        raise UsageError(f"at most 100 run_ids per request, got {len(run_ids)}")
    start, end = a.int("start_step"), a.int("end_step")
    max_results = a.int("max_results", 320) or 320
    out: list[dict[str, Any]] = []
    for run_id in run_ids:
        rows = [
            r
            for r in store.metric_history(run_id, key, workspace=ws)
            if (start is None or r[2] >= start) and (end is None or r[2] <= end)
        ]
        steps = sorted({r[2] for r in rows})
        if len(steps) > max_results:  # evenly spaced steps, keeping the first and last
            n = len(steps) - 1
            picks = {steps[round(i * n / (max_results - 1))] for i in range(max_results)}
        else:
            picks = set(steps)
        out += [
            {"key": key, "value": _nan_or(v, nan), "timestamp": t, "step": s, "run_id": run_id}
            for v, t, s, nan in rows
            if s in picks
        ]
    return {"metrics": out}


# Wire forms -----------------------------------------------------------------------
def wire_run(run: dict[str, Any]) -> dict[str, Any]:
    data = run["data"]
    return {
        "info": _info(run["info"]),
        "data": {
            "metrics": [{**m, "value": num(m["value"])} for m in data["metrics"]],
            "params": data["params"],
            "tags": data["tags"],
        },
        "inputs": run["inputs"],
        "outputs": run["outputs"],
    }


def _info(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if v is not None}


def _num_json(value: float, is_nan: Any) -> str:
    if is_nan:
        return '"NaN"'
    shown = num(value)
    return json.dumps(shown) if isinstance(shown, str) else repr(float(value))


def _nan_or(value: float, is_nan: Any) -> float | str:
    return "NaN" if is_nan else num(value)


def _run_id(a: Args) -> str:
    return a.str("run_id", "run_uuid", required=True)


def _view_type(value: Any) -> str:
    names = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}
    if value in (None, ""):
        return "ACTIVE_ONLY"
    if isinstance(value, int) or str(value).isdigit():
        return names.get(int(value), "ACTIVE_ONLY")
    return str(value)


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/experiments/create", create_experiment),
    ("GET", "/experiments/get", get_experiment),
    ("GET", "/experiments/get-by-name", get_experiment_by_name),
    ("POST", "/experiments/search", search_experiments),
    ("GET", "/experiments/search", search_experiments),
    ("POST", "/experiments/update", update_experiment),
    ("POST", "/experiments/delete", delete_experiment),
    ("POST", "/experiments/restore", restore_experiment),
    ("POST", "/experiments/set-experiment-tag", set_experiment_tag),
    ("POST", "/experiments/delete-experiment-tag", delete_experiment_tag),
    ("POST", "/runs/create", create_run),
    ("GET", "/runs/get", get_run),
    ("POST", "/runs/update", update_run),
    ("POST", "/runs/delete", delete_run),
    ("POST", "/runs/restore", restore_run),
    ("POST", "/runs/search", search_runs),
    ("GET", "/runs/search", search_runs),
    ("POST", "/runs/log-metric", log_metric),
    ("POST", "/runs/log-parameter", log_param),
    ("POST", "/runs/set-tag", set_tag),
    ("POST", "/runs/delete-tag", delete_tag),
    ("POST", "/runs/log-batch", log_batch),
    ("POST", "/runs/log-model", log_model),
    ("POST", "/runs/log-inputs", log_inputs),
    ("POST", "/runs/outputs", log_outputs),
    ("GET", "/metrics/get-history", get_metric_history),
    ("GET", "/metrics/get-history-bulk-interval", get_metric_history_bulk_interval),
]


def _endpoint(handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Any:
        args = await request_args(request)
        args.state = request.app.state
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            args.bearer = authorization[7:].strip()
        args.data.update({k: v for k, v in request.path_params.items() if k != "ws"})
        store = tracking_store(request)
        result = await run_in_threadpool(handler, store, workspace_of(request), args)
        if isinstance(result, Response):
            return result
        # Wire values are plain JSON already: a JSONResponse skips FastAPI's jsonable_encoder,
        # which took 28 ms of a 500-run search answer that json.dumps writes in 3 (measured).
        return JSONResponse(result)

    endpoint.__name__ = handler.__name__
    return endpoint


async def _registry(request: Request) -> Any:
    raise NotSupportedError(REGISTRY_MESSAGE)


async def _unserved(request: Request) -> Any:
    """Any other path under an MLflow prefix: MLflow's own answer shape, so the client's
    message names what is missing instead of a bare "Not Found"."""
    path = request.url.path
    if "/mlflow/traces" in path:
        raise NotSupportedError(TRACING_MESSAGE)
    return JSONResponse(
        {
            "error_code": "ENDPOINT_NOT_FOUND",
            "message": f"Mill does not serve {request.method} {path}",
        },
        status_code=404,
    )


_ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]

# Every prefix the tracking router is mounted under (see tracking/routers.py), and the rest.
_TRACKING_PATH = re.compile(
    r"(?:/workspaces/(?P<ws>[^/]+))?/(?:ajax-)?api/2\.0/mlflow(?P<rest>/.*)"
)


class FixedPathRoute(BaseRoute):
    """The MLflow calls whose path has no parameter (all but logged models' and artifacts'),
    found with one regex and one dict lookup, ahead of the app's routers. FastAPI tries its
    routes one by one, and with Mill's own API and the MLflow routers under four prefixes,
    finding ``runs/log-metric`` took as long as logging the metric; its per-route request
    handling (dependency solving for a ``Request``) was as much again. What this does not
    answer (a path with a parameter, a wrong method, an unknown path) falls through to the
    routers, which answer it as before; errors are answered in MLflow's shape by both."""

    def __init__(self, extra: list[tuple[str, str, Handler]] | None = None) -> None:
        """``extra``: the routes :func:`build_tracking_router` was given besides its own."""
        self._endpoints: dict[tuple[str, str], Endpoint] = {
            (method, path): guarded(_endpoint(handler))
            for method, path, handler in [*ROUTES, *(extra or [])]
            if "{" not in path
        }

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        found = _TRACKING_PATH.fullmatch(get_route_path(scope))
        endpoint = found and self._endpoints.get((scope["method"], found["rest"]))
        if endpoint is None:
            return Match.NONE, {}
        ws = found["ws"]  # type: ignore[index]
        return Match.FULL, {"endpoint": endpoint, "path_params": {"ws": ws} if ws else {}}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await scope["endpoint"](Request(scope, receive))
        await response(scope, receive, send)


def build_tracking_router(extra: list[tuple[str, str, Handler]] | None = None) -> APIRouter:
    """The ``/api/2.0/mlflow`` routes (mounted under each prefix by the caller)."""
    router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)
    for method, path, handler in [*ROUTES, *(extra or [])]:
        router.add_api_route(path, _endpoint(handler), methods=[method])
    # Registry endpoints the extra routes lack (Databricks and Unity Catalog ones) say so.
    for noun in ("registered-models", "model-versions"):
        router.add_api_route(f"/{noun}/{{rest:path}}", _registry, methods=_ALL_METHODS)
    router.add_api_route("/{rest:path}", _unserved, methods=_ALL_METHODS)  # last: the rest
    return router


def build_unserved_router() -> APIRouter:
    """For prefixes Mill serves nothing under (``/api/3.0/mlflow``, where MLflow 3 sends
    traces): every call answers in MLflow's shape, tracing with what is missing."""
    router = APIRouter(route_class=MlflowRoute, tags=["mlflow"], include_in_schema=False)
    router.add_api_route("/{rest:path}", _unserved, methods=_ALL_METHODS)
    return router
