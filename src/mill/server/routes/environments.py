"""/workspaces/{ws}/environments, the curated registry, and the build cache."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from mill import envs
from mill.errors import UsageError
from mill.server.routes.deps import context, json_object
from mill.services import environments
from mill.services.building import build_asset, builder
from mill.services.context import Context
from mill.services.formats import iso

router = APIRouter(tags=["environments"])


@router.get("/workspaces/{ws}/environments")
def list_environments(
    ws: str,
    name: str | None = None,
    include_archived: bool = False,
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    return environments.list_assets(ctx, ws, name, include_archived)


@router.post("/workspaces/{ws}/environments", status_code=201)
async def create_environment(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(environments.create, ctx, ws, body)


@router.get("/workspaces/{ws}/environments/{name}")
def show_environment(
    ws: str,
    name: str,
    version: str | None = None,
    label: str | None = None,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    return environments.show(ctx, ws, name, version, label)


@router.patch("/workspaces/{ws}/environments/{name}/versions/{version}")
async def update_environment(
    ws: str, name: str, version: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(environments.update, ctx, ws, name, version, body)


@router.post("/workspaces/{ws}/environments/{name}/archive", status_code=204)
def archive_environment(
    ws: str, name: str, version: str | None = None, ctx: Context = Depends(context)
) -> None:
    environments.archive(ctx, ws, name, version, True)


@router.post("/workspaces/{ws}/environments/{name}/restore", status_code=204)
def restore_environment(
    ws: str, name: str, version: str | None = None, ctx: Context = Depends(context)
) -> None:
    environments.archive(ctx, ws, name, version, False)


@router.post("/workspaces/{ws}/environments/{name}/build")
def build_environment(
    ws: str,
    name: str,
    version: str | None = None,
    label: str | None = None,
    builder_name: str = Query("uv", alias="builder"),
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    """Build (or find cached) an environment now; ``builder=docker`` builds an image."""
    return build_asset(ctx, ws, name, version, label, builder_name)


@router.get("/registries/azureml/environments")
def curated_environments() -> list[dict[str, Any]]:
    return envs.list_curated()


@router.get("/environments/cache")
def cached_environments(ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return [_cached(c.to_dict()) for c in builder(ctx).list_cached()]


def _cached(data: dict[str, Any]) -> dict[str, Any]:
    data["size_mb"] = round(data["size_bytes"] / 1e6, 1)
    data["created"] = iso(data.get("created"))
    data["last_used"] = iso(data.get("last_used"))
    return data


@router.post("/environments/cache/prune")
async def prune_environments(request: Request, ctx: Context = Depends(context)) -> dict[str, Any]:
    body = await json_object(request)
    older_than = body.get("older_than")
    keep = body.get("keep")
    if older_than is None and keep is None:
        raise UsageError("say what to prune: older_than (e.g. '7d') and/or keep (a count)")
    seconds = envs.parse_duration(str(older_than)) if older_than is not None else None
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise UsageError(f"keep must be a whole number >= 0; got {keep!r}")
    removed = await run_in_threadpool(builder(ctx).prune, seconds, keep)
    return {"removed": removed}
