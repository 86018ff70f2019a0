"""/workspaces/{ws}/datastores, and streaming file transfer to and from storage URIs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from mill.server.routes.deps import context, json_object
from mill.services import datastores
from mill.services.context import Context

router = APIRouter(tags=["datastores"])

CHUNK = 8 * 1024 * 1024  # what goes to storage per write: big enough for multipart uploads


@router.get("/workspaces/{ws}/datastores")
def list_datastores(ws: str, ctx: Context = Depends(context)) -> list[dict[str, Any]]:
    return datastores.list_all(ctx, ws)


@router.post("/workspaces/{ws}/datastores", status_code=201)
async def create_datastore(
    ws: str,
    request: Request,
    set_default: bool = False,
    check: bool = True,
    ctx: Context = Depends(context),
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(
        lambda: datastores.create(ctx, ws, body, set_default=set_default, check=check)
    )


@router.put("/workspaces/{ws}/datastores/{name}")
async def update_datastore(
    ws: str, name: str, request: Request, check: bool = True, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    body.setdefault("name", name)
    return await run_in_threadpool(lambda: datastores.update(ctx, ws, body, check=check))


@router.get("/workspaces/{ws}/datastores/{name}")
def show_datastore(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return datastores.show(ctx, ws, name)


@router.post("/workspaces/{ws}/datastores/{name}/default")
def set_default_datastore(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return datastores.set_default(ctx, ws, name)


@router.delete("/workspaces/{ws}/datastores/{name}", status_code=204)
def delete_datastore(ws: str, name: str, ctx: Context = Depends(context)) -> None:
    datastores.delete(ctx, ws, name)


@router.get("/workspaces/{ws}/storage/files")
def list_files(ws: str, uri: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return datastores.list_files(ctx, ws, uri)


@router.get("/workspaces/{ws}/storage/file")
def read_file(ws: str, uri: str, ctx: Context = Depends(context)) -> StreamingResponse:
    handle = datastores.open_read(ctx, ws, uri)  # errors answer before the body starts

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@router.put("/workspaces/{ws}/storage/file", status_code=204)
async def write_file(ws: str, uri: str, request: Request, ctx: Context = Depends(context)) -> None:
    """Stream the request body to a file on a datastore, a chunk at a time (memory flat)."""
    handle = await run_in_threadpool(datastores.open_write, ctx, ws, uri)
    try:
        buffer = bytearray()
        async for piece in _body(request):
            buffer += piece
            if len(buffer) >= CHUNK:
                await run_in_threadpool(handle.write, bytes(buffer))
                buffer.clear()
        if buffer:
            await run_in_threadpool(handle.write, bytes(buffer))
    except BaseException:
        await run_in_threadpool(_discard, handle)
        raise
    await run_in_threadpool(handle.close)


async def _body(request: Request) -> AsyncIterator[bytes]:
    async for piece in request.stream():
        if piece:
            yield piece


def _discard(handle: Any) -> None:
    """Drop a half-written file: fsspec writers abort multipart uploads on discard()."""
    discard = getattr(handle, "discard", None)
    try:
        if callable(discard):
            discard()
        else:
            handle.close()
    except Exception:
        pass
