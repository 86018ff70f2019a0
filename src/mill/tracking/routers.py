"""Where the MLflow-compatible routes are mounted: plain (the ``default`` workspace) and
under ``/workspaces/{ws}``, each for ``/api`` and ``/ajax-api`` (which the MLflow UI uses)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from mill.tracking.api import FixedPathRoute, build_tracking_router, build_unserved_router

__all__ = ["ArtifactRoot", "add_mlflow_routes"]

ArtifactRoot = Callable[[str], Path]


def add_mlflow_routes(app: FastAPI, artifact_root: ArtifactRoot | None = None) -> None:
    """Serve the MLflow APIs from ``app``: the fixed-path calls first of all its routes
    (:class:`FixedPathRoute`), the rest through routers after its own.

    ``artifact_root(workspace)`` is the folder that holds a workspace's MLflow artifacts;
    without it, artifacts go under the app's ``ctx.workspace_root(ws) / "mlflow-artifacts"``.
    """
    from mill.tracking.artifacts import artifact_routes, build_artifacts_router
    from mill.tracking.models import MODEL_ROUTES
    from mill.tracking.registry import REGISTRY_ROUTES

    routes = [*artifact_routes(artifact_root), *MODEL_ROUTES, *REGISTRY_ROUTES]
    tracking = build_tracking_router(routes)
    artifacts = build_artifacts_router(artifact_root)
    unserved = build_unserved_router()
    for base in ("", "/workspaces/{ws}"):
        for api in ("api", "ajax-api"):
            app.include_router(tracking, prefix=f"{base}/{api}/2.0/mlflow")
            app.include_router(artifacts, prefix=f"{base}/{api}/2.0/mlflow-artifacts")
            app.include_router(unserved, prefix=f"{base}/{api}/3.0/mlflow")
    app.router.routes.insert(0, FixedPathRoute(routes))
