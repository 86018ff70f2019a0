"""Where the MLflow-compatible routers are mounted: plain (the ``default`` workspace) and
under ``/workspaces/{ws}``, each for ``/api`` and ``/ajax-api`` (which the MLflow UI uses)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter

from mill.tracking.api import build_tracking_router, build_unserved_router

__all__ = ["ArtifactRoot", "routers_for_app"]

ArtifactRoot = Callable[[str], Path]


def routers_for_app(artifact_root: ArtifactRoot | None = None) -> list[tuple[str, APIRouter]]:
    """``(prefix, router)`` pairs for ``app.include_router(router, prefix=prefix)``.

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
    pairs: list[tuple[str, APIRouter]] = []
    for base in ("", "/workspaces/{ws}"):
        for api in ("api", "ajax-api"):
            pairs.append((f"{base}/{api}/2.0/mlflow", tracking))
            pairs.append((f"{base}/{api}/2.0/mlflow-artifacts", artifacts))
            pairs.append((f"{base}/{api}/3.0/mlflow", unserved))
    return pairs
