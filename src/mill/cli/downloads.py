"""Unpack a job output's tar stream safely under a folder."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["download_output"]


class _ChunkReader:
    """A read()-able view of an iterator of byte chunks (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                break
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def download_output(client: Any, job: str, output: str, target: Path) -> int:
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    reader = _ChunkReader(iter(client.download_output(job, output)))
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            # The "data" filter refuses absolute paths, '..', links out of the folder and devices.
            tar.extract(member, target, filter="data")
            count += member.isfile()
    return count
