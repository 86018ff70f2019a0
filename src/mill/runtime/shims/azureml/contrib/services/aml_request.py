"""``AMLRequest`` and ``@rawhttp`` for scoring scripts (standard library only).

A ``@rawhttp``-decorated ``run(request)`` receives an :class:`AMLRequest`: the parts of a
Flask request scoring scripts use. Multipart uploads are parsed with the ``email`` package.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from io import BytesIO
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qsl

__all__ = ["AMLRequest", "FileStorage", "MultiDict", "rawhttp"]

__mill_shim__ = True
_rawHttpRequested = False  # the name Azure's server reads; kept for scripts that check it

F = TypeVar("F", bound=Callable[..., Any])


def rawhttp(func: F) -> F:
    """Mark ``run`` to receive the whole request (an :class:`AMLRequest`)."""
    global _rawHttpRequested
    _rawHttpRequested = True
    func.__mill_rawhttp__ = True  # type: ignore[attr-defined]
    return func


class MultiDict(Mapping[str, Any]):
    """Keys with one or more values: ``[key]``/``get`` give the first, ``getlist`` all."""

    def __init__(self, pairs: list[tuple[str, Any]] | None = None) -> None:
        self._items: dict[str, list[Any]] = {}
        for key, value in pairs or []:
            self._items.setdefault(key, []).append(value)

    def __getitem__(self, key: str) -> Any:
        return self._items[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def getlist(self, key: str) -> list[Any]:
        return list(self._items.get(key, []))

    def to_dict(self, flat: bool = True) -> dict[str, Any]:
        if flat:
            return {k: v[0] for k, v in self._items.items()}
        return {k: list(v) for k, v in self._items.items()}


class _Headers(Mapping[str, str]):
    """Case-insensitive header names, as in Flask."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._items = {k.lower(): (k, v) for k, v in headers.items()}

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._items


class FileStorage:
    """One uploaded file: ``filename``, ``content_type``, ``stream``, ``read()``, ``save()``."""

    def __init__(self, data: bytes, filename: str | None, name: str, content_type: str) -> None:
        self.filename = filename
        self.name = name
        self.content_type = content_type
        self.mimetype = content_type.split(";")[0].strip()
        self.stream: BinaryIO = BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def save(self, dst: str | BinaryIO) -> None:
        self.stream.seek(0)
        if isinstance(dst, str):
            with open(dst, "wb") as out:
                shutil.copyfileobj(self.stream, out)
        else:
            shutil.copyfileobj(self.stream, dst)

    def __repr__(self) -> str:
        return f"<FileStorage {self.filename!r} ({self.content_type})>"


class _BadRequest(ValueError):
    mill_status = 400  # the replica answers 400 with the message


class AMLRequest:
    """The request a ``@rawhttp`` ``run`` receives."""

    def __init__(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query_string = query.encode()
        self.full_path = f"{path}?{query}"
        self.headers = _Headers(headers)
        self.args = MultiDict(parse_qsl(query, keep_blank_values=True))
        self.data = body
        self.content_type = self.headers.get("content-type", "")
        self.mimetype = self.content_type.split(";")[0].strip().lower()
        self.content_length = len(body)
        self._form: tuple[MultiDict, MultiDict] | None = None

    def get_data(self, cache: bool = True, as_text: bool = False, **_: Any) -> Any:
        return self.data.decode("utf-8", errors="replace") if as_text else self.data

    @property
    def is_json(self) -> bool:
        return self.mimetype == "application/json" or self.mimetype.endswith("+json")

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        """The body parsed as JSON; ``None`` when it is not JSON and ``silent`` is set."""
        if not (force or self.is_json):
            if silent:
                return None
            raise _BadRequest(f"expected a JSON body (application/json); got {self.mimetype!r}")
        try:
            return json.loads(self.data)
        except ValueError as exc:
            if silent:
                return None
            raise _BadRequest(f"the request body is not valid JSON: {exc}") from None

    @property
    def json(self) -> Any:
        return self.get_json()

    @property
    def files(self) -> MultiDict:
        return self._parse_form()[1]

    @property
    def form(self) -> MultiDict:
        return self._parse_form()[0]

    @property
    def values(self) -> MultiDict:
        return MultiDict([*self.args.items(), *self.form.items()])

    def _parse_form(self) -> tuple[MultiDict, MultiDict]:
        if self._form is None:
            self._form = _parse_form(self.mimetype, self.content_type, self.data)
        return self._form

    def __repr__(self) -> str:
        return f"<AMLRequest {self.method} {self.full_path}>"


def _parse_form(mimetype: str, content_type: str, body: bytes) -> tuple[MultiDict, MultiDict]:
    if mimetype == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        return MultiDict(parse_qsl(text, keep_blank_values=True)), MultiDict()
    if mimetype != "multipart/form-data":
        return MultiDict(), MultiDict()
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: list[tuple[str, Any]] = []
    files: list[tuple[str, Any]] = []
    parts: list[Message] = list(message.iter_parts()) if message.is_multipart() else []
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            charset = part.get_content_charset() or "utf-8"
            fields.append((name, data.decode(charset, errors="replace")))
        else:
            files.append((name, FileStorage(data, filename, name, part.get_content_type())))
    return MultiDict(fields), MultiDict(files)
