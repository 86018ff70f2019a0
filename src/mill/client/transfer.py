"""Streamed, concurrent file transfer between this machine and storage URIs on the server.

Each file goes in its own request, read and sent in 1 MiB chunks (memory stays flat
whatever the size); several files move at once, as fsspec and azcopy do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from mill.client.http import MillClient
from mill.errors import UsageError

__all__ = ["download_uri", "local_files", "upload_path"]

_CHUNK = 1 << 20
_WORKERS = 8
_STREAM_TIMEOUT = httpx.Timeout(None, connect=5.0)

Progress = Callable[[int], None]  # called with the bytes moved since the last call


def local_files(path: Path) -> list[tuple[str, Path, int]]:
    """``(relative path, file, size)`` of a file or of every file below a folder."""
    if path.is_file():
        return [(path.name, path, path.stat().st_size)]
    if not path.is_dir():
        raise UsageError(f"no such file or folder: {path}")
    found: list[tuple[str, Path, int]] = []
    for folder, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            file = Path(folder) / name
            if file.is_file():
                found.append((file.relative_to(path).as_posix(), file, file.stat().st_size))
    return found


def upload_path(
    client: MillClient, path: Path, uri: str, progress: Progress | None = None
) -> tuple[int, int]:
    """Upload a file to ``uri``, or a folder's files below ``uri/``; returns (files, bytes)."""
    files = local_files(path)
    single = path.is_file()

    def send(item: tuple[str, Path, int]) -> int:
        relative, file, size = item
        target = uri if single else f"{uri.rstrip('/')}/{relative}"
        client.request(
            "PUT",
            client.ws("/storage/file"),
            params={"uri": target},
            content=_chunks(file, progress),
            headers={"Content-Length": str(size)},
            timeout=_STREAM_TIMEOUT,
        )
        return size

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        total = sum(pool.map(send, files))
    return len(files), total


def download_uri(
    client: MillClient,
    uri: str,
    target: Path,
    listing: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Download the file or folder at ``uri`` into the folder ``target``; (files, bytes)."""
    listing = listing or client.request("GET", client.ws("/storage/files"), params={"uri": uri})
    files = listing["files"]
    base = uri.rstrip("/")
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()

    def fetch(entry: dict[str, Any]) -> int:
        relative = str(entry["path"])
        destination = (root / relative).resolve()
        if root not in destination.parents:  # a hostile listing cannot write outside target
            raise UsageError(f"refusing to write {relative!r} outside {target}")
        source = base if listing.get("kind") == "file" else f"{base}/{relative}"
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(destination.name + ".part")
        size = 0
        with partial.open("wb") as out:
            for chunk in client.read_storage(source):
                out.write(chunk)
                size += len(chunk)
                if progress:
                    progress(len(chunk))
        partial.replace(destination)
        return size

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        total = sum(pool.map(fetch, files))
    return len(files), total


def _chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk
