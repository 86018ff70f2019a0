"""The wire protocol between the scoring gateway and its replicas (standard library only).

One TCP connection on loopback per gateway-replica pair, kept open and multiplexed: every
message is a frame with a request id, so many requests share the connection and answers may
come back in any order. No HTTP parsing on the replica side and no connection per request.

A frame is a fixed header ``>BIII`` (kind, request id, meta length, body length), then the
meta (UTF-8 JSON object) and the body (raw bytes)::

    HELLO     gateway → replica, first frame: {"token": "..."}; the replica answers with a
              HELLO {"pid": ...} or closes the connection on a wrong token
    REQUEST   {"method", "path", "query", "headers": {lower-case name: value}} + body;
              ``path`` is relative to the endpoint: "/score", "/swagger.json", "/",
              "/v2/models/<name>/infer", ...
    RESPONSE  {"status": int, "headers": {...}} + body, with the request's id
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

__all__ = [
    "HEADER",
    "HELLO",
    "MAX_META",
    "REQUEST",
    "RESPONSE",
    "FrameParser",
    "ProtocolError",
    "encode",
]

HEADER = struct.Struct(">BIII")
HELLO, REQUEST, RESPONSE = 0, 1, 2
_KINDS = (HELLO, REQUEST, RESPONSE)
MAX_META = 1 << 20  # request line and headers; bodies are limited by the gateway

Frame = tuple[int, int, dict[str, Any], bytes]


class ProtocolError(Exception):
    """The peer sent something that is not a frame of this protocol."""


def encode(kind: int, request_id: int, meta: Mapping[str, Any], body: bytes = b"") -> bytes:
    packed = json.dumps(meta, separators=(",", ":")).encode()
    return HEADER.pack(kind, request_id, len(packed), len(body)) + packed + body


class FrameParser:
    """Incremental decoder: ``feed`` bytes as they arrive, get back the complete frames."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        buffer = self._buffer
        buffer += data
        frames: list[Frame] = []
        start = 0
        size = HEADER.size
        while len(buffer) - start >= size:
            kind, request_id, meta_len, body_len = HEADER.unpack_from(buffer, start)
            if kind not in _KINDS or meta_len > MAX_META or body_len > self.max_body:
                raise ProtocolError(
                    f"bad frame: kind {kind}, meta {meta_len} bytes, body {body_len} bytes"
                )
            end = start + size + meta_len + body_len
            if len(buffer) < end:
                break
            meta_end = start + size + meta_len
            try:
                meta = json.loads(bytes(buffer[start + size : meta_end])) if meta_len else {}
            except ValueError as exc:
                raise ProtocolError(f"frame meta is not JSON: {exc}") from exc
            if not isinstance(meta, dict):
                raise ProtocolError("frame meta is not a JSON object")
            frames.append((kind, request_id, meta, bytes(buffer[meta_end:end])))
            start = end
        if start:
            del buffer[:start]
        return frames
