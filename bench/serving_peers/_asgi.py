"""The few lines of raw ASGI the peers share: read the body, answer JSON."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def answer(send: Send, status: int, body: bytes) -> None:
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def json_app(score: Callable[[Any], Any]) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that POSTs the decoded JSON body to ``score`` and answers its result."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        try:
            result = score(json.loads(await read_body(receive)))
        except Exception as exc:  # a bad request answers 400, as the replicas do
            await answer(send, 400, json.dumps({"error": str(exc)}).encode())
            return
        await answer(send, 200, json.dumps(result).encode())

    return app
