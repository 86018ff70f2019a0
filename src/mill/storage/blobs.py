"""A content-addressed blob store on a local folder: the same bytes are stored once."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mill.errors import UsageError

__all__ = ["BlobStore", "BlobWriter", "is_digest"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def is_digest(text: str) -> bool:
    return bool(_DIGEST.match(text))


class BlobWriter:
    """Receives a blob in chunks, hashing as it writes; commit() refuses bytes of another hash."""

    def __init__(self, target: Path, digest: str) -> None:
        self.target = target
        self.digest = digest
        self.size = 0
        self._hasher = hashlib.sha256()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        self._out = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self._out.write(chunk)
        self.size += len(chunk)

    def commit(self) -> int:
        self._out.close()
        try:
            actual = self._hasher.hexdigest()
            if actual != self.digest:
                raise UsageError(
                    f"uploaded bytes hash to {actual}, not {self.digest}",
                    hint="the file changed while it was being uploaded; try again",
                )
            os.chmod(self._tmp, 0o444)
            os.replace(self._tmp, self.target)
        finally:
            self.discard()
        return self.size

    def discard(self) -> None:
        self._out.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)


class BlobStore:
    """Blobs live at ``<root>/<digest[:2]>/<digest>`` (the layout the job bootstrap reads)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if not is_digest(digest):
            raise UsageError(f"not a sha256 digest: {digest[:80]!r}")
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def missing(self, digests: Iterable[str]) -> list[str]:
        return sorted({d for d in digests if not self.has(d)})

    def writer(self, digest: str) -> BlobWriter:
        return BlobWriter(self.path(digest), digest)

    def put(self, digest: str, chunks: Iterable[bytes]) -> int:
        writer = self.writer(digest)
        try:
            for chunk in chunks:
                writer.write(chunk)
        except BaseException:
            writer.discard()
            raise
        return writer.commit()

    def materialise(self, files: Iterable[Mapping[str, Any]], target: Path) -> Path:
        """Lay out manifest ``files`` (path, sha256, mode) as a folder at ``target``, once.

        The folder is written under a temporary name and renamed into place, so ``target``
        either does not exist or is complete; a concurrent writer's copy wins harmlessly.
        """
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
        try:
            for entry in files:
                path = staging / entry["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(self.path(entry["sha256"]), path)
                os.chmod(path, int(entry.get("mode", 0o644)) & 0o777)
            os.chmod(staging, 0o755)
            try:
                staging.rename(target)
            except OSError:  # another request materialised it first
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def put_file(self, source: Path, digest: str) -> int:
        with source.open("rb") as f:
            return self.put(digest, iter(lambda: f.read(_CHUNK), b""))
