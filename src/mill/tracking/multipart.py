"""Multipart artifact uploads through the ``mlflow-artifacts`` proxy (``mpu/*``).

With ``MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=true`` the client asks ``mpu/create/<path>`` for
one upload URL per part, PUTs the parts to those URLs in parallel, then calls
``mpu/complete/<path>`` (or ``mpu/abort/<path>`` on failure). MLflow's own server hands out
cloud presigned URLs; Mill hands out its own ``mpu/upload/<upload_id>/<part>`` route, so
parts land on the workspace's datastore like any proxied artifact.

Parts are staged beside the artifact root (``.<root>.mpu/<upload_id>/``), never inside it,
so listings do not show them; ``complete`` joins them in part order into a temporary file
and renames it into place. The target path is checked with :func:`safe_path` at create and
recorded in the staging folder, so a part or a complete cannot aim anywhere else.

A client that dies between ``create`` and ``complete`` leaves its parts behind: each ``create``
removes the uploads of the same artifact root that nothing has written to for
``ABANDONED_AFTER_S`` (a day), so abandoned parts never pile up.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from mill.errors import NotFoundError, UsageError
from mill.tracking.wire import request_args

__all__ = ["add_multipart_routes"]

RootOf = Callable[[Request], Path]

MAX_PARTS = 10_000
ABANDONED_AFTER_S = 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_TARGET = "target"  # the staged upload's destination, relative to the artifact root


def _staging(root: Path) -> Path:
    return root.parent / f".{root.name}.mpu"


def _upload_dir(root: Path, upload_id: str) -> Path:
    if not _UPLOAD_ID.fullmatch(upload_id):
        raise UsageError(f"invalid upload id {upload_id!r}")
    folder = _staging(root) / upload_id
    if not (folder / _TARGET).is_file():
        raise NotFoundError(f"no multipart upload {upload_id!r} is in progress")
    return folder


def _remove_abandoned(staging: Path, now: float) -> None:
    """Delete uploads whose newest file is older than :data:`ABANDONED_AFTER_S`."""
    try:
        uploads = [p for p in staging.iterdir() if _UPLOAD_ID.fullmatch(p.name)]
    except OSError:
        return
    for folder in uploads:
        try:
            touched = max(p.stat().st_mtime for p in [folder, *folder.iterdir()])
        except (OSError, ValueError):
            continue
        if now - touched > ABANDONED_AFTER_S:
            shutil.rmtree(folder, ignore_errors=True)


def _relative_target(path: str, local_file: str) -> str:
    name = os.path.basename(local_file.replace("\\", "/"))
    if not name or name in (".", ".."):
        raise UsageError(f"invalid file name in {local_file!r}")
    return f"{path.strip('/')}/{name}" if path.strip("/") else name


def _part_number(value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise UsageError(f"invalid part number {value!r}") from None
    if not 1 <= number <= MAX_PARTS:
        raise UsageError(f"part number must be between 1 and {MAX_PARTS}, got {number}")
    return number


def _complete(root: Path, folder: Path, numbers: list[int]) -> None:
    from mill.tracking.artifacts import safe_path

    target = safe_path(root, (folder / _TARGET).read_text())
    missing = [n for n in numbers if not (folder / f"{n}.part").is_file()]
    if missing:
        raise UsageError(f"parts {missing} of this upload were never received")
    target.parent.mkdir(parents=True, exist_ok=True)
    joined = folder / "joined"
    with joined.open("wb") as out:
        for number in numbers:
            with (folder / f"{number}.part").open("rb") as part:
                shutil.copyfileobj(part, out, 1024 * 1024)
    os.replace(joined, target)
    shutil.rmtree(folder, ignore_errors=True)


def add_multipart_routes(router: APIRouter, root_of: RootOf) -> None:
    """Add ``mpu/create``, ``mpu/upload``, ``mpu/complete`` and ``mpu/abort`` to ``router``."""
    from mill.tracking.artifacts import safe_path

    @router.post("/mpu/create/{path:path}")
    async def create(path: str, request: Request) -> Any:
        args = await request_args(request)
        root = root_of(request)
        relative = _relative_target(path, args.str("path", required=True))
        safe_path(root, relative)
        num_parts = args.int("num_parts", 1) or 1
        if not 1 <= num_parts <= MAX_PARTS:
            raise UsageError(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
        await run_in_threadpool(_remove_abandoned, _staging(root), time.time())
        upload_id = uuid.uuid4().hex
        folder = _staging(root) / upload_id
        folder.mkdir(parents=True)
        (folder / _TARGET).write_text(relative)
        base = str(request.url.replace(query="")).split("/mpu/create/", 1)[0]
        # The parts are PUT with plain requests: pass on the caller's credentials, if any.
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        credentials = [
            {"url": f"{base}/mpu/upload/{upload_id}/{n}", "part_number": n, "headers": headers}
            for n in range(1, num_parts + 1)
        ]
        return {"upload_id": upload_id, "credentials": credentials}

    @router.put("/mpu/upload/{upload_id}/{part_number}")
    async def upload_part(upload_id: str, part_number: str, request: Request) -> Any:
        folder = _upload_dir(root_of(request), upload_id)
        number = _part_number(part_number)
        partial = folder / f"{number}.{id(request)}.tmp"
        size = 0
        try:
            with partial.open("wb") as out:
                async for chunk in request.stream():
                    if chunk:
                        size += len(chunk)
                        await run_in_threadpool(out.write, chunk)
            os.replace(partial, folder / f"{number}.part")
        finally:
            partial.unlink(missing_ok=True)
        return JSONResponse({}, headers={"ETag": f'"{number}-{size}"'})

    @router.post("/mpu/complete/{path:path}")
    async def complete(path: str, request: Request) -> Any:
        args = await request_args(request)
        root = root_of(request)
        folder = _upload_dir(root, args.str("upload_id", required=True))
        relative = _relative_target(path, args.str("path", required=True))
        if (folder / _TARGET).read_text() != relative:
            raise UsageError("this upload was created for another path")
        numbers = sorted(_part_number(p.get("part_number")) for p in args.list("parts"))
        if not numbers:
            raise UsageError("a multipart upload needs at least one part")
        await run_in_threadpool(_complete, root, folder, numbers)
        return {}

    @router.post("/mpu/abort/{path:path}")
    async def abort(path: str, request: Request) -> Any:
        args = await request_args(request)
        folder = _upload_dir(root_of(request), args.str("upload_id", required=True))
        await run_in_threadpool(shutil.rmtree, folder, True)
        return {}
