"""/workspaces/{ws}/models: the model registry (Azure ML's model assets)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import conversion, models
from mill.services.context import Context

router = APIRouter(tags=["models"])


@router.get("/workspaces/{ws}/models")
def list_models(
    ws: str,
    name: str | None = None,
    include_archived: bool = False,
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    return models.list_models(ctx, ws, name, include_archived)


@router.post("/workspaces/{ws}/models", status_code=201)
async def create_model(
    ws: str, request: Request, validate_only: bool = False, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    created = await run_in_threadpool(
        lambda: models.create(ctx, ws, body, validate_only=validate_only)
    )
    return models.read(created)


@router.post("/workspaces/{ws}/models/uploads", status_code=201)
async def new_upload(ws: str, request: Request, ctx: Context = Depends(context)) -> dict[str, str]:
    body = await json_object(request)
    ctx.store.get_workspace(ws)
    return models.new_upload(ctx, ws, str(body.get("filename", "")))


@router.get("/workspaces/{ws}/models/{name}")
def show_model(
    ws: str,
    name: str,
    version: str | None = None,
    label: str | None = None,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    return models.show(ctx, ws, name, version, label)


@router.patch("/workspaces/{ws}/models/{name}/versions/{version}")
async def update_model(
    ws: str, name: str, version: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(models.update, ctx, ws, name, version, body)


@router.post("/workspaces/{ws}/models/{name}/archive")
def archive_model(
    ws: str,
    name: str,
    version: str | None = None,
    restore: bool = False,
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    return models.archive(ctx, ws, name, version, archived=not restore)


@router.post("/workspaces/{ws}/models/{name}/versions/{version}/convert", status_code=201)
async def convert_model(
    ws: str, name: str, version: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    """Convert a version to ONNX (or a Triton repository) and register the result."""
    body = await json_object(request)
    return await run_in_threadpool(conversion.convert, ctx, ws, name, version, body)


@router.post("/workspaces/{ws}/models/{name}/versions/{version}/package", status_code=201)
def package_model(ws: str, name: str, version: str, ctx: Context = Depends(context)) -> Any:
    """Build a deployable folder for the version; answers its storage URI (to download)."""
    from mill.services import packaging

    return packaging.package(ctx, ws, name, version)
