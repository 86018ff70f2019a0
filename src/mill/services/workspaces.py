"""Workspaces and their default datastore and compute."""

from __future__ import annotations

import re
import shutil
from typing import Any

from mill.config import DEFAULT_WORKSPACE
from mill.domain.entities import Datastore, Workspace
from mill.domain.status import ACTIVE, JobStatus
from mill.errors import ConflictError, SpecError
from mill.services.context import Context
from mill.services.formats import iso
from mill.store.sql import JobQuery

__all__ = ["DEFAULT_DATASTORE", "create", "delete", "ensure_default", "list_all", "show"]

DEFAULT_DATASTORE = "workspaceblobstore"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,32}$")


def ensure_default(ctx: Context) -> None:
    if ctx.store.find_workspace(DEFAULT_WORKSPACE) is None:
        try:
            create(ctx, DEFAULT_WORKSPACE, description="The default workspace")
        except ConflictError:
            pass  # another process created it first


def create(
    ctx: Context, name: str, description: str | None = None, tags: dict[str, str] | None = None
) -> dict[str, Any]:
    if not _NAME.match(name):
        raise SpecError.one(
            "invalid workspace name",
            field="name",
            value=name,
            allowed="3-33 letters, digits, '-' or '_', starting with a letter or digit",
        )
    ctx.store.create_workspace(Workspace(name=name, description=description, tags=tags or {}))
    root = ctx.workspace_root(name)
    blob_root = root / "datastores" / DEFAULT_DATASTORE
    blob_root.mkdir(parents=True, exist_ok=True)
    ctx.store.add_datastore(
        Datastore(
            workspace=name,
            name=DEFAULT_DATASTORE,
            type="local",
            config={"path": str(blob_root)},
            is_default=True,
        )
    )
    return show(ctx, name)


def show(ctx: Context, name: str) -> dict[str, Any]:
    return _read(ctx, ctx.store.get_workspace(name))


def list_all(ctx: Context) -> list[dict[str, Any]]:
    return [_read(ctx, w) for w in ctx.store.list_workspaces()]


def delete(ctx: Context, name: str) -> None:
    if name == DEFAULT_WORKSPACE:
        raise ConflictError("the default workspace cannot be deleted")
    ctx.store.get_workspace(name)  # NotFound first
    busy = [
        j.name
        for j in ctx.store.list_jobs(name, JobQuery(include_archived=True, limit=10_000))
        if j.status in ACTIVE or j.status in (JobStatus.QUEUED, JobStatus.NOT_STARTED)
    ]
    if busy:
        raise ConflictError(
            f"workspace {name!r} has {len(busy)} unfinished job(s): {', '.join(busy[:5])}",
            hint="cancel them first (mill job cancel --name N -w " + name + ")",
        )
    ctx.store.delete_workspace(name)
    shutil.rmtree(ctx.workspace_root(name), ignore_errors=True)


def _read(ctx: Context, ws: Workspace) -> dict[str, Any]:
    return {
        "name": ws.name,
        "display_name": ws.name,
        "description": ws.description,
        "tags": ws.tags,
        "storage_root": str(ctx.workspace_root(ws.name)),
        "mlflow_tracking_uri": f"{ctx.server_url}/workspaces/{ws.name}" if ctx.server_url else None,
        "default_datastore": DEFAULT_DATASTORE,
        "creation_context": {"created_at": iso(ws.created_at)},
    }
