"""Callbacks from job processes (authenticated by each job's own token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from mill.server.routes.deps import context, json_object
from mill.services import jobs
from mill.services.context import Context

router = APIRouter(tags=["runtime"], include_in_schema=False)


@router.post("/runtime/jobs/{job_id}/events", status_code=204)
async def job_event(job_id: int, request: Request, ctx: Context = Depends(context)) -> None:
    header = request.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else ""
    event = await json_object(request)
    await run_in_threadpool(jobs.apply_event, ctx, job_id, token, event)
