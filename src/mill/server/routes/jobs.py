"""/workspaces/{ws}/jobs: submit, read, list, cancel, archive, logs, outputs."""

from __future__ import annotations

import asyncio
import os
import tarfile
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from mill.domain.entities import Job
from mill.domain.status import TERMINAL
from mill.errors import NotFoundError, UsageError
from mill.server.routes.deps import context, json_object
from mill.services import experiments, jobs
from mill.services.context import Context
from mill.services.launch import ARTIFACTS, output_path
from mill.storage.filesystems import DatastoreFS
from mill.store.sql import JobQuery

router = APIRouter(tags=["jobs"])

_LOG_POLL_SECONDS = 0.05
_STATUS_POLL_SECONDS = 0.25
_READ_CHUNK = 1 << 16


@router.post("/workspaces/{ws}/jobs", status_code=201)
async def create_job(
    ws: str, request: Request, validate_only: bool = False, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    return await run_in_threadpool(jobs.create, ctx, ws, body, validate_only=validate_only)


@router.get("/workspaces/{ws}/jobs")
def list_jobs(
    ws: str,
    experiment_name: str | None = None,
    status: str | None = None,
    include_archived: bool = False,
    archived_only: bool = False,
    max_results: int = Query(50, ge=1, le=10_000),
    filter: str | None = None,
    order_by: list[str] | None = Query(None),
    ctx: Context = Depends(context),
) -> list[dict[str, Any]]:
    query = JobQuery(
        experiment_name=experiment_name,
        status=status,
        include_archived=include_archived,
        archived_only=archived_only,
        limit=max_results,
    )
    if filter or order_by:
        return experiments.search_jobs(ctx, ws, query, filter, order_by)
    return jobs.list_jobs(ctx, ws, query)


@router.post("/workspaces/{ws}/jobs/compare")
async def compare_jobs(
    ws: str, request: Request, ctx: Context = Depends(context)
) -> dict[str, Any]:
    body = await json_object(request)
    names = body.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise UsageError('body must be {"names": [job names]}')
    return await run_in_threadpool(experiments.compare, ctx, ws, names)


@router.get("/workspaces/{ws}/jobs/{name}/metrics")
def job_metrics(
    ws: str, name: str, history: str | None = None, ctx: Context = Depends(context)
) -> dict[str, Any]:
    return experiments.job_metrics(ctx, ws, name, history)


@router.get("/workspaces/{ws}/experiments")
def list_experiments(
    ws: str, include_archived: bool = False, ctx: Context = Depends(context)
) -> list[dict[str, Any]]:
    return experiments.list_all(ctx, ws, include_archived)


@router.get("/workspaces/{ws}/experiments/{name}")
def show_experiment(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return experiments.show(ctx, ws, name)


@router.post("/workspaces/{ws}/experiments/{name}/archive", status_code=204)
def archive_experiment(ws: str, name: str, ctx: Context = Depends(context)) -> None:
    experiments.archive(ctx, ws, name, True)


@router.post("/workspaces/{ws}/experiments/{name}/restore", status_code=204)
def restore_experiment(ws: str, name: str, ctx: Context = Depends(context)) -> None:
    experiments.archive(ctx, ws, name, False)


@router.get("/workspaces/{ws}/jobs/{name}")
def show_job(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return jobs.show(ctx, ws, name)


@router.post("/workspaces/{ws}/jobs/{name}/cancel")
def cancel_job(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return jobs.cancel(ctx, ws, name)


@router.post("/workspaces/{ws}/jobs/{name}/archive")
def archive_job(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return jobs.archive(ctx, ws, name, True)


@router.post("/workspaces/{ws}/jobs/{name}/restore")
def restore_job(ws: str, name: str, ctx: Context = Depends(context)) -> dict[str, Any]:
    return jobs.archive(ctx, ws, name, False)


@router.get("/workspaces/{ws}/jobs/{name}/logs")
async def job_logs(
    ws: str,
    name: str,
    file: str = "user_logs/std_log.txt",
    offset: int = Query(0, ge=0),
    follow: bool = False,
    until_started: bool = False,
    ctx: Context = Depends(context),
) -> StreamingResponse:
    """The log file from ``offset``; with ``follow`` it streams until the job has ended
    (or, with ``until_started``, until its process has started: for the build log)."""
    job = await run_in_threadpool(ctx.store.get_job, ws, name)
    path = await run_in_threadpool(jobs.log_path, ctx, job, file)

    async def body() -> AsyncIterator[bytes]:
        position = offset
        next_status_check = 0.0

        def done(j: Job) -> bool:
            return j.status in TERMINAL or (until_started and j.handle is not None)

        ended = done(job)
        loop = asyncio.get_running_loop()
        while True:
            chunk = _read_from(path, position)
            if chunk:
                position += len(chunk)
                yield chunk
                continue
            if ended or not follow:
                return
            now = loop.time()
            if now >= next_status_check:
                current = await run_in_threadpool(ctx.store.get_job, ws, name)
                # Read once more after the end so nothing written last is lost.
                ended = done(current)
                next_status_check = now + _STATUS_POLL_SECONDS
                if ended:
                    continue
            await asyncio.sleep(_LOG_POLL_SECONDS)

    return StreamingResponse(body(), media_type="text/plain; charset=utf-8")


@router.get("/workspaces/{ws}/jobs/{name}/outputs/{output}/archive")
def download_output(
    ws: str, name: str, output: str, ctx: Context = Depends(context)
) -> StreamingResponse:
    """An output's files as a tar stream (the CLI unpacks it under --download-path)."""
    job = ctx.store.get_job(ws, name)
    remote = jobs.remote_output(ctx, job, output)
    if remote is not None:  # on Blob, ADLS or S3: the files come from there
        fs, relative = remote
        if fs.stat(relative).kind == "missing":
            raise NotFoundError(f"output {output!r} of job {name!r} has not been written")
        return StreamingResponse(_tar_stream_remote(fs, relative), media_type="application/x-tar")
    root = output_path(ctx, job, output)
    if not root.exists():
        what = "has no files yet" if output == ARTIFACTS else "has not been written"
        raise NotFoundError(f"output {output!r} of job {name!r} {what}")
    return StreamingResponse(_tar_stream(root), media_type="application/x-tar")


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(_READ_CHUNK)
    except FileNotFoundError:
        return b""


class _Pipe:
    """A file-like sink that hands written bytes to a reading generator, bounded in memory.

    When the reader goes away (the client hung up), the writer gives up after a while
    instead of waiting forever.
    """

    _WRITER_PATIENCE_SECONDS = 60.0

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._cond = threading.Condition()
        self.closed = False

    def write(self, data: bytes) -> int:
        with self._cond:
            while len(self._chunks) > 16 and not self.closed:
                if not self._cond.wait(self._WRITER_PATIENCE_SECONDS):
                    raise BrokenPipeError("the download's reader went away")
            self._chunks.append(bytes(data))
            self._cond.notify_all()
        return len(data)

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def read_all(self) -> Iterator[bytes]:
        while True:
            with self._cond:
                while not self._chunks and not self.closed:
                    self._cond.wait()
                if not self._chunks:
                    return
                chunk = self._chunks.pop(0)
                self._cond.notify_all()
            yield chunk


def _tar_stream_remote(fs: DatastoreFS, relative: str) -> Iterator[bytes]:
    """A tar of the files below ``relative`` on remote storage, streamed file by file."""
    pipe = _Pipe()
    single = fs.stat(relative).kind == "file"

    def produce() -> None:
        try:
            with tarfile.open(fileobj=pipe, mode="w|") as tar:  # type: ignore[call-overload]
                for path, size in fs.iter_files(relative):
                    source = relative if single else f"{relative.rstrip('/')}/{path}"
                    info = tarfile.TarInfo(path)
                    info.size = size
                    with fs.open_read(source) as handle:
                        tar.addfile(info, handle)
        finally:
            pipe.close()

    threading.Thread(target=produce, daemon=True).start()
    yield from pipe.read_all()


def _tar_stream(root: Path) -> Iterator[bytes]:
    pipe = _Pipe()

    def produce() -> None:
        try:
            with tarfile.open(fileobj=pipe, mode="w|") as tar:  # type: ignore[call-overload]
                if root.is_file():
                    tar.add(root, arcname=root.name)
                else:
                    for dirpath, _dirs, files in os.walk(root):
                        for filename in sorted(files):
                            full = Path(dirpath) / filename
                            tar.add(full, arcname=str(full.relative_to(root)))
        finally:
            pipe.close()

    threading.Thread(target=produce, daemon=True).start()
    yield from pipe.read_all()
