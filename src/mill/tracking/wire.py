"""MLflow's wire conventions: the error shape, request arguments, JSON numbers.

These routes answer in MLflow's format, not Mill's envelope: the ``mlflow`` client parses
``{"error_code", "message"}`` into ``MlflowException``. :class:`MlflowRoute` catches every
error inside the router, so nothing reaches the app's own handlers.
"""

from __future__ import annotations

import builtins
import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from mill.errors import ConflictError, MillError, NotFoundError, NotSupportedError, UsageError

__all__ = ["Args", "Endpoint", "MlflowRoute", "error_response", "guarded", "num", "request_args"]

log = logging.getLogger("mill.tracking")

# MLflow error code and HTTP status for each of Mill's errors.
_CODES: list[tuple[type[MillError], str, int]] = [
    (NotFoundError, "RESOURCE_DOES_NOT_EXIST", 404),
    (ConflictError, "RESOURCE_ALREADY_EXISTS", 400),
    (NotSupportedError, "NOT_IMPLEMENTED", 501),
]


def error_response(exc: Exception) -> JSONResponse:
    """The MLflow error body for ``exc``; anything that is not a Mill error is a 500."""
    if isinstance(exc, MillError):
        code, status = "INVALID_PARAMETER_VALUE", 400
        for cls, mlflow_code, http_status in _CODES:
            if isinstance(exc, cls):
                code, status = mlflow_code, http_status
        if exc.http_status >= 500 and status == 400:
            code, status = "INTERNAL_ERROR", exc.http_status
        return JSONResponse({"error_code": code, "message": exc.message}, status_code=status)
    log.exception("unexpected error in the tracking API")
    return JSONResponse(
        {"error_code": "INTERNAL_ERROR", "message": "internal server error; see the server log"},
        status_code=500,
    )


Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
    """``endpoint`` with every error, whatever it is, answered in MLflow's shape."""

    async def guarded_endpoint(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:  # every error answers in MLflow's shape
            return error_response(exc)

    return guarded_endpoint


class MlflowRoute(APIRoute):
    """A route whose errors, all of them, answer in MLflow's format."""

    def get_route_handler(self) -> Endpoint:
        return guarded(super().get_route_handler())


class Args:
    """A request's arguments: the JSON body (POST/PATCH) merged over the query string."""

    def __init__(self, data: dict[str, Any], multi: dict[str, list[str]]) -> None:
        self.data = data
        self.multi = multi
        self.state: Any = None  # the app's state, for handlers that need more than the store
        self.bearer: str | None = None  # the caller's bearer token (a job's own, in jobs)

    def str(self, name: str, *alts: str, required: bool = False) -> str:
        for key in (name, *alts):
            value = self.data.get(key)
            if value not in (None, ""):
                return str(value)
        if required:
            raise UsageError(f"Missing value for required parameter '{name}'.")
        return ""

    def int(self, name: builtins.str, default: builtins.int | None = None) -> builtins.int | None:
        value = self.data.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UsageError(
                f"Invalid value {value!r} for parameter '{name}': expected an integer"
            ) from None

    def list(self, name: builtins.str) -> builtins.list[Any]:
        if name in self.multi:
            return list(self.multi[name])
        value = self.data.get(name)
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]


async def request_args(request: Request) -> Args:
    multi: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        multi.setdefault(key, []).append(value)
    data: dict[str, Any] = {k: v[-1] for k, v in multi.items()}
    if request.method in ("POST", "PATCH", "PUT", "DELETE"):
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise UsageError(f"request body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise UsageError("request body must be a JSON object")
            data.update(body)
            multi = {k: v for k, v in multi.items() if k not in body}
    return Args(data, multi)


def num(value: float) -> float | str:
    """A double as protobuf JSON writes it: NaN and infinities are strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value
