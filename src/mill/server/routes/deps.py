"""Shared request helpers."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from mill.errors import UsageError
from mill.services.context import Context

__all__ = ["context", "json_object"]


def context(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what was wrong.

    NaN and Infinity are refused: they are not JSON, and nothing could answer with them.
    """
    try:
        body = json.loads(await request.body(), parse_constant=_reject_constant)
    except ValueError as exc:
        raise UsageError(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise UsageError("request body must be a JSON object")
    return body


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
