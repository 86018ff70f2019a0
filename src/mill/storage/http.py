"""A public http(s) file as read-only storage: what data assets and models point at by URL.

It answers the part of :class:`~mill.storage.filesystems.DatastoreFS` that reading needs
(``stat``, ``iter_files``, ``open_read``, ``get``); a URL names one file, never a folder.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import httpx

from mill.errors import DatastoreError
from mill.storage.filesystems import PathStats

__all__ = ["HttpSource"]

_TIMEOUT = httpx.Timeout(60.0, connect=5.0)
_CHUNK = 1 << 20


class HttpSource:
    """One URL; ``relative`` is always ``""`` (the URL itself)."""

    type = "http"

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = urlsplit(url).netloc

    def native_uri(self, relative: str = "") -> str:
        return self.url

    def local_root(self) -> Path | None:
        return None

    def stat(self, relative: str = "") -> PathStats:
        try:
            response = httpx.head(self.url, follow_redirects=True, timeout=_TIMEOUT)
            if response.status_code == 405:  # some servers refuse HEAD: ask for one byte
                response = httpx.get(
                    self.url,
                    headers={"Range": "bytes=0-0"},
                    follow_redirects=True,
                    timeout=_TIMEOUT,
                )
        except httpx.HTTPError as exc:
            raise DatastoreError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code == 404:
            return PathStats("missing", 0, 0, "")
        if response.status_code >= 400:
            raise DatastoreError(f"{self.url} answered HTTP {response.status_code}")
        size = _size(response.headers)
        tag = response.headers.get("etag") or response.headers.get("last-modified") or ""
        fingerprint = hashlib.sha256(f"{self.url}\n{size}\n{tag}".encode()).hexdigest()
        return PathStats("file", size, 1, fingerprint)

    def iter_files(self, relative: str = "") -> Iterator[tuple[str, int]]:
        yield self._basename(), self.stat().size_bytes

    def open_read(self, relative: str = "") -> BinaryIO:
        return _Stream(self.url)  # type: ignore[return-value]

    def get(
        self, relative: str, local: Path, progress: Callable[[int], None] | None = None
    ) -> PathStats:
        """Download the file to ``local`` (a file path), streamed."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(local.name + ".part")
        with _Stream(self.url) as source, partial.open("wb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
                if progress:
                    progress(len(chunk))
        partial.replace(local)
        return self.stat()

    def _basename(self) -> str:
        return urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1] or "download"


class _Stream:
    """The body of a GET, read in pieces; a file-like object for ``with`` and ``read``."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(follow_redirects=True, timeout=_TIMEOUT)
        try:
            self._response = self._client.send(self._client.build_request("GET", url), stream=True)
        except httpx.HTTPError as exc:
            self._client.close()
            raise DatastoreError(f"cannot reach {url}: {exc}") from None
        if self._response.status_code >= 400:
            status = self._response.status_code
            self.close()
            raise DatastoreError(f"{url} answered HTTP {status}")
        self._pieces = self._response.iter_bytes(_CHUNK)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            rest = self._pending + b"".join(self._pieces)
            self._pending = b""
            return rest
        while len(self._pending) < size:
            piece = next(self._pieces, b"")
            if not piece:
                break
            self._pending += piece
        out, self._pending = self._pending[:size], self._pending[size:]
        return out

    def close(self) -> None:
        self._response.close()
        self._client.close()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _size(headers: httpx.Headers) -> int:
    ranged = headers.get("content-range", "")
    if "/" in ranged and ranged.rsplit("/", 1)[-1].isdigit():
        return int(ranged.rsplit("/", 1)[-1])
    length = headers.get("content-length", "")
    return int(length) if length.isdigit() else 0
