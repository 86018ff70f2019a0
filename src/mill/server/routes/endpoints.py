"""/workspaces/{ws}/online-endpoints: online endpoints and their deployments.

Scoring itself is not here: it goes to the gateway's own port (``scoring_uri``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import deployments, endpoints
from mill.services.context import Context

router = APIRouter(tags=["online endpoints"])

_BASE = "/workspaces/{ws}/online-endpoints"


@router.get(_BASE)
def list_endpoints(ws: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return endpoints.list_endpoints(ctx, ws)


@router.post(_BASE, status_code=201)
async def create_endpoint(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(endpoints.create, ctx, ws, body)


@router.get(_BASE + "/{name}")
def show_endpoint(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return endpoints.show(ctx, ws, name)


@router.patch(_BASE + "/{name}")
async def update_endpoint(
    ws: str, name: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(endpoints.update, ctx, ws, name, body)


@router.delete(_BASE + "/{name}", status_code=204)
def delete_endpoint(ws: str, name: str, ctx: Context = Depends(context)) -> Response:
    endpoints.delete(ctx, ws, name)
    return Response(status_code=204)


@router.post(_BASE + "/{name}/credentials")
def get_credentials(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return endpoints.get_credentials(ctx, ws, name)


@router.post(_BASE + "/{name}/regenerate-keys")
async def regenerate_keys(
    ws: str, name: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    key_type = str(body.get("key_type", "primary"))
    return await run_in_threadpool(endpoints.regenerate_keys, ctx, ws, name, key_type)


@router.get(_BASE + "/{name}/deployments")
def list_deployments(ws: str, name: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return deployments.list_deployments(ctx, ws, name)


@router.post(_BASE + "/{name}/deployments", status_code=201)
async def create_deployment(
    ws: str,
    name: str,
    request: Request,
    all_traffic: bool = False,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(
        lambda: deployments.create(ctx, ws, name, body, all_traffic=all_traffic)
    )


@router.get(_BASE + "/{name}/deployments/{deployment}")
def show_deployment(
    ws: str, name: str, deployment: str, ctx: Context = Depends(context)
) -> dict[str, Any]:
    return deployments.show(ctx, ws, name, deployment)


@router.put(_BASE + "/{name}/deployments/{deployment}")
async def update_deployment(
    ws: str, name: str, deployment: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(deployments.update, ctx, ws, name, deployment, body)


@router.delete(_BASE + "/{name}/deployments/{deployment}", status_code=204)
def delete_deployment(
    ws: str, name: str, deployment: str, ctx: Context = Depends(context)
) -> Response:
    deployments.delete(ctx, ws, name, deployment)
    return Response(status_code=204)


@router.get(_BASE + "/{name}/deployments/{deployment}/logs")
def deployment_logs(
    ws: str, name: str, deployment: str, lines: int = 200, ctx: Context = Depends(context)
) -> dict[str, Any]:
    return deployments.get_logs(ctx, ws, name, deployment, max(1, min(lines, 10_000)))
