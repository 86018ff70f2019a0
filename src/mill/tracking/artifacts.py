"""The ``mlflow-artifacts`` proxy: upload, download and list files under a workspace's root.

Run artifact URIs are ``mlflow-artifacts:/<experiment_id>/<run_id>/artifacts``; the client
turns them into ``.../api/2.0/mlflow-artifacts/artifacts/<that path>``. Every path is
checked to stay inside the workspace's artifact root (no ``..``, no absolute paths, no
symlinks out), else a 400 in MLflow's format. Multipart uploads (``mpu/*``, used by the
client when ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD`` is set) are in :mod:`.multipart`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from mill.errors import NotFoundError, UsageError
from mill.store.logged_models import LoggedModelStore
from mill.store.tracking import SqlTrackingStore
from mill.tracking.api import Handler, workspace_of
from mill.tracking.routers import ArtifactRoot
from mill.tracking.wire import Args, MlflowRoute

__all__ = ["artifact_routes", "build_artifacts_router", "safe_path"]

SCHEME = "mlflow-artifacts:"


def _root(request: Request, artifact_root: ArtifactRoot | None, ws: str) -> Path:
    if artifact_root is not None:
        return Path(artifact_root(ws))
    return Path(request.app.state.ctx.workspace_root(ws)) / "mlflow-artifacts"


def safe_path(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would land outside ``root``."""
    relative = relative.strip()
    parts = [p for p in relative.replace("\\", "/").split("/") if p not in ("", ".")]
    if relative.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise UsageError(f"Invalid path: {relative!r}")
    target = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if real != real_root and not real.startswith(real_root + os.sep):
        raise UsageError(f"Invalid path: {relative!r}")
    return target


def _list(folder: Path) -> list[dict[str, Any]]:
    if not folder.is_dir():
        return []
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_dir():
            files.append({"path": entry.name, "is_dir": True})
        else:
            files.append({"path": entry.name, "is_dir": False, "file_size": entry.stat().st_size})
    return files


def build_artifacts_router(artifact_root: ArtifactRoot | None = None) -> APIRouter:
    """``/artifacts`` (list), ``/artifacts/{path}`` (PUT, GET, DELETE), ``/mpu/...``."""
    from mill.tracking.multipart import add_multipart_routes

    router = APIRouter(route_class=MlflowRoute, include_in_schema=False)
    add_multipart_routes(router, lambda req: _root(req, artifact_root, workspace_of(req)))

    @router.get("/artifacts")
    async def list_artifacts(request: Request) -> Any:
        root = _root(request, artifact_root, workspace_of(request))
        folder = safe_path(root, request.query_params.get("path", ""))
        return {"files": await run_in_threadpool(_list, folder)}

    @router.put("/artifacts/{path:path}")
    async def upload(path: str, request: Request) -> Any:
        target = safe_path(_root(request, artifact_root, workspace_of(request)), path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{id(request)}.part")
        try:
            with partial.open("wb") as out:
                async for chunk in request.stream():
                    if chunk:
                        await run_in_threadpool(out.write, chunk)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return {}

    @router.get("/artifacts/{path:path}")
    async def download(path: str, request: Request) -> Any:
        target = safe_path(_root(request, artifact_root, workspace_of(request)), path)
        if not target.is_file():
            raise NotFoundError(f"File {path} does not exist")
        return FileResponse(target, media_type="application/octet-stream")

    @router.delete("/artifacts/{path:path}")
    async def remove(path: str, request: Request) -> Any:
        target = safe_path(_root(request, artifact_root, workspace_of(request)), path)
        if target.is_dir():
            await run_in_threadpool(shutil.rmtree, target)
        elif target.exists():
            target.unlink()
        return {}

    return router


def artifact_routes(artifact_root: ArtifactRoot | None = None) -> list[tuple[str, str, Handler]]:
    """Tracking-API routes that read artifacts: ``/artifacts/list`` (MLflow 2.x clients), and
    a LoggedModel's ``/artifacts/directories`` listing and ``/artifacts/files`` download."""

    def under(a: Args, ws: str, uri: str, path: str) -> Path:
        """The file or folder ``path`` inside the proxied artifact location ``uri``."""
        if not uri.startswith(SCHEME):
            raise UsageError(f"artifacts at {uri!r} are not served by this server")
        relative = uri[len(SCHEME) :].lstrip("/")
        if artifact_root is not None:
            root = Path(artifact_root(ws))
        else:
            root = Path(a.state.ctx.workspace_root(ws)) / "mlflow-artifacts"
        safe_path(root, path)  # the path alone must not climb out either
        return safe_path(root, f"{relative}/{path}" if path else relative)

    def listing(a: Args, ws: str, uri: str, path: str) -> dict[str, Any]:
        files = [
            {**f, "path": f"{path.rstrip('/')}/{f['path']}" if path else f["path"]}
            for f in _list(under(a, ws, uri, path))
        ]
        return {"root_uri": uri, "files": files}

    def list_run_artifacts(store: SqlTrackingStore, ws: str, a: Args) -> Any:
        run = store.get_run(a.str("run_id", "run_uuid", required=True), ws)
        return listing(a, ws, str(run["info"]["artifact_uri"] or ""), a.str("path"))

    def model_uri(store: SqlTrackingStore, ws: str, a: Args) -> str:
        model = LoggedModelStore(store).get(ws, a.str("model_id", required=True))
        return str(model["artifact_uri"])

    def list_model_artifacts(store: SqlTrackingStore, ws: str, a: Args) -> Any:
        return listing(a, ws, model_uri(store, ws, a), a.str("artifact_directory_path"))

    def get_model_artifact(store: SqlTrackingStore, ws: str, a: Args) -> Any:
        path = a.str("artifact_file_path", required=True)
        target = under(a, ws, model_uri(store, ws, a), path)
        if not target.is_file():
            raise NotFoundError(f"File {path} does not exist")
        return FileResponse(target, media_type="application/octet-stream")

    return [
        ("GET", "/artifacts/list", list_run_artifacts),
        ("GET", "/logged-models/{model_id}/artifacts/directories", list_model_artifacts),
        ("GET", "/logged-models/{model_id}/artifacts/files", get_model_artifact),
    ]
