"""File transfer between this machine and storage URIs, through the Mill server.

When the server runs on this machine (loopback, and it can read a proof file we write),
it moves the files itself between our path and the storage with fsspec's own concurrency:
one hop, as fast as fsspec. Otherwise each file goes in its own streamed request, read and
sent in 1 MiB chunks (memory stays flat whatever the size), several files at once.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from mill.client.http import MillClient
from mill.errors import AuthError, UsageError, error_from_envelope

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
    done = _same_host(client, "upload", path.resolve(), uri, progress, Path(tempfile.gettempdir()))
    if done is not None:
        return done
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
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    kind = (listing or {}).get("kind")
    local = root / uri.rstrip("/").rsplit("/", 1)[-1] if kind == "file" else root
    done = _same_host(client, "download", local, uri, progress, root)
    if done is not None:
        return done
    listing = listing or client.request("GET", client.ws("/storage/files"), params={"uri": uri})
    files = listing["files"]
    base = uri.rstrip("/")

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


def _same_host(
    client: MillClient,
    direction: str,
    local: Path,
    uri: str,
    progress: Progress | None,
    proof_dir: Path,
) -> tuple[int, int] | None:
    """Let a server on this machine move the files itself; None when it cannot (stream)."""
    if not client.is_loopback:
        return None
    proof = secrets.token_hex(32)
    try:
        handle, proof_path = tempfile.mkstemp(prefix=".mill-proof-", dir=proof_dir)
    except OSError:
        return None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(proof)
        body = {
            "direction": direction,
            "local_path": str(local),
            "uri": uri,
            "proof_path": proof_path,
            "proof": proof,
        }
        try:
            events = _lines(client.post_stream(client.ws("/storage/transfer"), body))
            for event in events:
                if "bytes" in event and progress:
                    progress(int(event["bytes"]))
                elif "error" in event:
                    raise error_from_envelope(event["error"], 400)
                elif "done" in event:
                    return int(event["done"]["files"]), int(event["done"]["bytes"])
        except AuthError:
            return None  # not the same machine after all: stream the files
    finally:
        os.unlink(proof_path)
    raise UsageError("the server ended a transfer without saying how it went")


def _lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def _chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            if progress:
                progress(len(chunk))
            yield chunk
