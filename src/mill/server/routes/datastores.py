"""/workspaces/{ws}/datastores, and streaming file transfer to and from storage URIs."""

from __future__ import annotations

import hmac
import json
import queue
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from mill.errors import AuthError, MillError, UsageError
from mill.server.process import is_loopback
from mill.server.routes.deps import context, json_object
from mill.services import datastores
from mill.services.context import Context

router = APIRouter(tags=["datastores"])

CHUNK = 1024 * 1024  # what a download reads per step; fsspec's writers buffer the parts
_LOOPBACK = {"127.0.0.1", "::1"}
_PROGRESS_SECONDS = 0.25


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
    """Stream the request body to a file on a datastore as it arrives (memory flat)."""
    handle = await run_in_threadpool(datastores.open_write, ctx, ws, uri)
    try:
        async for piece in _body(request):
            await run_in_threadpool(handle.write, piece)
    except BaseException:
        await run_in_threadpool(_discard, handle)
        raise
    await run_in_threadpool(handle.close)


@router.post("/workspaces/{ws}/storage/transfer")
async def transfer(ws: str, request: Request, ctx: Context = Depends(context)) -> StreamingResponse:
    """Same-host transfer: the server reads or writes the caller's local path itself.

    Only for callers on this machine (a loopback address): for them the server's disk is
    theirs, and the bytes skip a second trip over HTTP. The answer streams JSON lines:
    ``{"bytes": n}`` as the transfer goes, then ``{"done": {...}}`` or ``{"error": {...}}``.
    """
    caller = request.client.host if request.client else ""
    if caller not in _LOOPBACK or not is_loopback(ctx.settings.host):
        # Behind a proxy, or bound to a public address, every caller might look local.
        raise AuthError(
            "same-host transfers are only for a loopback server and clients on its machine"
        )
    body = await json_object(request)
    direction, local, uri = (str(body.get(k, "")) for k in ("direction", "local_path", "uri"))
    _check_same_disk(str(body.get("proof_path", "")), str(body.get("proof", "")))
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    moved = [0]
    lock = threading.Lock()

    def progress(n: int) -> None:
        with lock:
            moved[0] += n

    def work() -> None:
        try:
            done = datastores.transfer_local(ctx, ws, direction, local, uri, progress)
            events.put({"done": done})
        except MillError as exc:
            events.put({"error": exc.to_envelope()})
        except Exception as exc:  # reported to the caller, never a half-open stream
            events.put({"error": {"code": "internal", "message": f"transfer failed: {exc}"}})
        finally:
            events.put(None)

    def lines() -> Iterator[bytes]:
        threading.Thread(target=work, daemon=True).start()
        reported = 0
        while True:
            try:
                event = events.get(timeout=_PROGRESS_SECONDS)
            except queue.Empty:
                event = {}
            with lock:
                current = moved[0]
            if current != reported:
                yield (json.dumps({"bytes": current - reported}) + "\n").encode()
                reported = current
            if event is None:
                return
            if event:
                yield (json.dumps(event) + "\n").encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")


def _check_same_disk(proof_path: str, proof: str) -> None:
    """The caller wrote ``proof`` into ``proof_path``: seeing it proves we share its disk.

    A loopback caller may still be elsewhere (an SSH tunnel, a container); then the paths
    it names are not ours to read or write, and it must stream instead.
    """
    if len(proof) < 32:
        raise UsageError("a same-host transfer needs a proof of at least 32 characters")
    try:
        with open(proof_path, encoding="utf-8") as handle:
            seen = handle.read(256)
    except (OSError, ValueError):
        seen = ""
    if not hmac.compare_digest(seen, proof):
        raise AuthError("the caller's files are not on this machine: stream them instead")


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
