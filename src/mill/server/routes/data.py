"""/workspaces/{ws}/data: data assets and their versions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import data
from mill.services.context import Context

router = APIRouter(tags=["data"])


@router.get("/workspaces/{ws}/data")
def list_data(
    ws: str,
    name: str | None = None,
    include_archived: bool = False,
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    return data.list_assets(ctx, ws, name, include_archived)


@router.post("/workspaces/{ws}/data", status_code=201)
async def create_data(
    ws: str, request: Request, validate_only: bool = False, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(lambda: data.create(ctx, ws, body, validate_only=validate_only))


@router.post("/workspaces/{ws}/data/uploads", status_code=201)
async def new_upload(ws: str, request: Request, ctx: Context = Depends(context)) -> dict[str, str]:
    body = await json_object(request)
    ctx.store.get_workspace(ws)
    return data.new_upload(ctx, ws, str(body.get("filename", "")))


@router.get("/workspaces/{ws}/data/{name}")
def show_data(
    ws: str,
    name: str,
    version: str | None = None,
    label: str | None = None,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    return data.show(ctx, ws, name, version, label)


@router.patch("/workspaces/{ws}/data/{name}/versions/{version}")
async def update_data(
    ws: str, name: str, version: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(data.update, ctx, ws, name, version, body)


@router.post("/workspaces/{ws}/data/{name}/archive")
def archive_data(
    ws: str,
    name: str,
    version: str | None = None,
    restore: bool = False,
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    return data.archive(ctx, ws, name, version, archived=not restore)


@router.get("/workspaces/{ws}/data/{name}/files")
def data_files(
    ws: str,
    name: str,
    version: str | None = None,
    label: str | None = None,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    return data.files(ctx, ws, data.resolve(ctx, ws, name, version, label))
