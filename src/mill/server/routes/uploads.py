"""Blob uploads by content hash, code snapshots and local data uploads."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import uploads
from mill.services.context import Context

router = APIRouter(tags=["uploads"])


@router.post("/workspaces/{ws}/blobs/missing")
async def missing_blobs(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    digests = [str(d) for d in body.get("digests") or []]
    return {"missing": await run_in_threadpool(uploads.missing_blobs, ctx, ws, digests)}


@router.put("/workspaces/{ws}/blobs/{digest}", status_code=201)
async def put_blob(
    ws: str, digest: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    # Written chunk by chunk as it arrives and hashed on the way, so memory stays flat.
    writer = await run_in_threadpool(uploads.blob_writer, ctx, ws, digest)
    try:
        async for chunk in request.stream():
            writer.write(chunk)
    except BaseException:
        writer.discard()
        raise
    size = await run_in_threadpool(writer.commit)
    return {"digest": digest, "size": size}


@router.post("/workspaces/{ws}/snapshots", status_code=201)
async def create_snapshot(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(uploads.create_snapshot, ctx, ws, body)


@router.post("/workspaces/{ws}/uploads", status_code=201)
async def upload_data(ws: str, request: Request, ctx: Context = Depends(context)) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(uploads.upload_data, ctx, ws, body)
