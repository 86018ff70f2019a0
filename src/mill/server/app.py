"""The FastAPI app: REST API under /api/v1, /healthz, one JSON error envelope."""

from __future__ import annotations

import gc
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mill import __version__
from mill.errors import AuthError, MillError, SpecError, SpecIssue
from mill.hashing import content_hash
from mill.services import endpoints, workspaces
from mill.services import scheduler as scheduler_module
from mill.services.context import Context
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.storage.datastores import local_path

__all__ = ["create_app"]

log = logging.getLogger("mill.server")

# Paths that answer without the server token: liveness, and job callbacks (own token).
_OPEN_PATHS = ("/healthz", "/api/v1/runtime/")
# MLflow API and artifact paths, under any prefix (3.0: where MLflow 3 sends traces)
_TRACKING_MARKS = ("/2.0/mlflow", "/3.0/mlflow")


def create_app(
    ctx: Context,
    *,
    token: str | None = None,
    home_id: str = "",
    run_loops: bool = True,
    server_port: int | None = None,
    freeze_startup_heap: bool = False,
) -> FastAPI:
    """Build the app. ``run_loops=False`` leaves the scheduler off (tests drive it by hand);
    ``server_port`` (the control plane's own port) starts the scoring gateway beside it;
    ``freeze_startup_heap`` (the server process's own app) moves everything startup made out
    of the garbage collector's sight (``gc.freeze``): a full collection walked all of it,
    and the request that triggered one waited 60 to 100 ms (measured; none ran afterwards in
    150 log-batches of 1,000 points)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        ctx.store.migrate()
        workspaces.ensure_default(ctx)
        sched = scheduler_module.Scheduler(ctx)
        if run_loops:
            summary = scheduler_module.recover(ctx)
            log.info("recovered jobs: %s", summary)
            sched.start()
        if server_port is not None:
            await run_in_threadpool(endpoints.start_serving, ctx, server_port)
        if freeze_startup_heap:
            gc.collect()  # what is garbage now should not be kept forever
            gc.freeze()
        try:
            yield
        finally:
            if server_port is not None:
                await run_in_threadpool(endpoints.stop_serving, ctx)
            if run_loops:
                sched.stop()

    app = FastAPI(
        title="Mill control plane",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.home_id = home_id

    async def check_token(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        path = request.url.path
        if token and not path.startswith(_OPEN_PATHS):
            header = request.headers.get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else ""
            if not given or not hmac.compare_digest(given.encode(), token.encode()):
                # A running job may call the MLflow API with its own token (MLFLOW_TRACKING_TOKEN).
                job_call = given and any(mark in path for mark in _TRACKING_MARKS)
                if not job_call or not await run_in_threadpool(
                    ctx.store.has_active_job_token, content_hash(given.encode())
                ):
                    return _envelope(AuthError("missing or wrong token", hint="set MILL_TOKEN"))
        return await call_next(request)

    if token:  # HTTP middleware costs every request something: only when there is a token
        app.middleware("http")(check_token)

    @app.exception_handler(MillError)
    async def mill_error(_request: Request, exc: MillError) -> JSONResponse:
        return _envelope(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            SpecIssue(
                str(e.get("msg", "invalid")),
                field=".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            )
            for e in exc.errors()
        ]
        return _envelope(SpecError(issues))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"code": code, "message": str(exc.detail), "hint": None, "details": {}},
            status_code=exc.status_code,
        )

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(
            {
                "code": "internal",
                "message": "internal server error; the server log has the details",
                "hint": None,
                "details": {},
            },
            status_code=500,
        )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "home_id": home_id}

    from mill.server.routes import (
        computes,
        data,
        datastores,
        environments,
        jobs,
        models,
        runtime,
        secrets,
        uploads,
    )
    from mill.server.routes import (
        endpoints as endpoint_routes,
    )
    from mill.server.routes import workspaces as ws_routes

    modules = (
        ws_routes,
        computes,
        datastores,
        data,
        models,
        uploads,
        environments,
        jobs,
        runtime,
        secrets,
        endpoint_routes,
    )
    for module in modules:
        app.include_router(module.router, prefix="/api/v1")

    from mill.tracking.routers import add_mlflow_routes

    app.state.tracking_store = ctx.tracking  # one store for the MLflow API and the services

    def artifact_root(workspace: str) -> Path:
        """MLflow artifacts live on the workspace's default datastore, under mlflow-artifacts/."""
        datastore = ctx.store.get_datastore(workspace, DEFAULT_DATASTORE)
        return local_path(datastore, "mlflow-artifacts")

    add_mlflow_routes(app, artifact_root)
    return app


def _envelope(exc: MillError) -> JSONResponse:
    return JSONResponse(exc.to_envelope(), status_code=exc.http_status)
