"""/workspaces/{ws}/secrets: the vault. Answers metadata only; no response carries a value."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.errors import SpecError, SpecIssue
from mill.server.routes.deps import context, json_object
from mill.services import secrets
from mill.services.context import Context

router = APIRouter(tags=["secrets"])

_BODY_FIELDS = ("value", "description")


@router.get("/workspaces/{ws}/secrets")
def list_secrets(ws: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return secrets.list_secrets(ctx, ws)


@router.get("/workspaces/{ws}/secrets/{name}")
def show_secret(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return secrets.show(ctx, ws, name)


@router.put("/workspaces/{ws}/secrets/{name}")
async def set_secret(
    ws: str, name: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    """Create or replace a secret: ``{"value": "...", "description": "..."}``."""
    body = await json_object(request)
    unknown = sorted(k for k in body if k not in _BODY_FIELDS)
    if unknown:
        raise SpecError(
            [SpecIssue("unknown field", field=k, allowed=", ".join(_BODY_FIELDS)) for k in unknown]
        )
    return await run_in_threadpool(
        secrets.set_secret, ctx, ws, name, body.get("value", ""), body.get("description")
    )


@router.delete("/workspaces/{ws}/secrets/{name}", status_code=204)
def delete_secret(ws: str, name: str, force: bool = False, ctx: Context = Depends(context)) -> None:
    secrets.delete(ctx, ws, name, force=force)
