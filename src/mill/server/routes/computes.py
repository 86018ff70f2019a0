"""/workspaces/{ws}/computes"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.errors import SpecError
from mill.server.routes.deps import context, json_object
from mill.services import computes
from mill.services.context import Context

router = APIRouter(tags=["computes"])


@router.get("/workspaces/{ws}/computes")
def list_computes(ws: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    ctx.store.get_workspace(ws)
    return computes.list_all(ctx, ws)


@router.post("/workspaces/{ws}/computes", status_code=201)
async def create_compute(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    max_instances = body.get("max_instances", 1)
    if isinstance(max_instances, bool) or not isinstance(max_instances, int):
        raise SpecError.one(
            "expected an integer",
            field="max_instances",
            value=max_instances,
            allowed="an integer >= 1",
        )
    return await run_in_threadpool(
        computes.create,
        ctx,
        ws,
        str(body.get("name", "")),
        str(body.get("type", "local")),
        max_instances,
        body.get("description"),
    )


@router.get("/workspaces/{ws}/computes/{name}")
def show_compute(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return computes.show(ctx, ws, name)


@router.delete("/workspaces/{ws}/computes/{name}", status_code=204)
def delete_compute(ws: str, name: str, ctx: Context = Depends(context)) -> None:
    computes.delete(ctx, ws, name)
