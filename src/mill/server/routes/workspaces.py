"""/workspaces"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import workspaces
from mill.services.context import Context

router = APIRouter(tags=["workspaces"])


@router.get("/workspaces")
def list_workspaces(ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return workspaces.list_all(ctx)


@router.post("/workspaces", status_code=201)
async def create_workspace(request: Request, ctx: Context = Depends(context)) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(
        workspaces.create,
        ctx,
        str(body.get("name", "")),
        body.get("description"),
        body.get("tags") or {},
    )


@router.get("/workspaces/{name}")
def show_workspace(name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return workspaces.show(ctx, name)


@router.delete("/workspaces/{name}", status_code=204)
def delete_workspace(name: str, ctx: Context = Depends(context)) -> None:
    workspaces.delete(ctx, name)
