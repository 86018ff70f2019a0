"""The environment cache on disk: ``<root>/<key>`` folders, their locks and markers.

Layout::

    <root>/.locks/<key>.lock     flock'ed: exclusive to build or delete, shared while in use
    <root>/<key>/                the virtualenv
    <root>/<key>/spec.json       canonical form + resolved spec
    <root>/<key>/last_used       its mtime is the last time a job asked for it
    <root>/<key>/.mill-ready     written last, atomically: without it the folder is debris

Locks are ``fcntl.flock`` locks, which the OS releases when a process dies, so a crashed
build never blocks the next one. Lock files are never deleted: deleting one while another
process has it open would let two processes hold "the" lock at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mill.errors import UsageError

__all__ = ["CachedEnvironment", "EnvironmentCache", "parse_duration", "source_summary"]

READY = ".mill-ready"
LAST_USED = "last_used"
SPEC = "spec.json"
LOCKS = ".locks"
_KEY = re.compile(r"^[0-9a-f]{64}$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)


def parse_duration(text: str) -> float:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"45s"``, ``"2w"`` (or ``"1h30m"``) in seconds."""
    cleaned = str(text).strip()
    allowed = "a number and a unit: s, m, h, d or w (e.g. 7d, 12h, 1h30m)"
    if not cleaned or _DURATION.sub("", cleaned).strip():
        raise UsageError(f"not a duration: {text!r}; expected {allowed}")
    return sum(float(n) * _UNITS[u.lower()] for n, u in _DURATION.findall(cleaned))


def source_summary(source: dict[str, Any]) -> str:
    """One line saying what an environment was built from."""
    if source.get("curated"):
        return f"curated {source['curated']}"
    if source.get("user_managed"):
        return f"user-managed {source['user_managed']}"
    parts = []
    if source.get("dockerfile"):
        parts.append(f"Dockerfile {source['dockerfile']}")
    if source.get("conda"):
        parts.append(f"conda {source.get('conda_name') or source['conda']}")
    if source.get("image"):
        parts.append(f"image {source['image']}")
    return ", ".join(parts) or "host interpreter"


@dataclass(frozen=True)
class CachedEnvironment:
    """One built environment in the cache."""

    key: str
    path: Path
    size_bytes: int
    created: float
    last_used: float
    python_version: str
    requirement_count: int
    source: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


class EnvironmentCache:
    """The folders under ``root``; every change to one is made under its lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def is_ready(self, key: str) -> bool:
        return (self.root / key / READY).is_file()

    def touch(self, key: str) -> None:
        marker = self.root / key / LAST_USED
        try:
            os.utime(marker)
        except FileNotFoundError:
            marker.touch()

    @contextmanager
    def lock(self, key: str, *, blocking: bool = True, shared: bool = False) -> Iterator[bool]:
        """Hold ``key``'s lock; yields False (holding nothing) when non-blocking and busy."""
        locks = self.root / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        fd = os.open(locks / f"{key}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, mode if blocking else mode | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def mark_ready(self, key: str, spec: dict[str, Any]) -> None:
        """Write spec.json and last_used, then the ready marker last and atomically."""
        folder = self.root / key
        (folder / SPEC).write_text(json.dumps(spec, indent=2, sort_keys=True), encoding="utf-8")
        (folder / LAST_USED).touch()
        partial = folder / f"{READY}.partial"
        partial.write_text(f"{time.time()}\n", encoding="utf-8")
        os.replace(partial, folder / READY)

    def remove(self, key: str) -> None:
        """Delete ``key``'s folder (the caller holds the lock); the marker goes first."""
        folder = self.root / key
        try:
            (folder / READY).unlink()
        except FileNotFoundError:
            pass
        shutil.rmtree(folder, ignore_errors=True)

    def keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _KEY.match(p.name) and p.is_dir())

    def spec(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads((self.root / key / SPEC).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def canonical_forms(self) -> list[dict[str, Any]]:
        """The canonical forms of every ready environment (to explain a miss)."""
        forms = []
        for key in self.keys():
            spec = self.spec(key) if self.is_ready(key) else None
            if spec and isinstance(spec.get("canonical"), dict):
                forms.append(spec["canonical"])
        return forms

    def last_used(self, key: str) -> float:
        folder = self.root / key
        for name in (LAST_USED, READY):
            try:
                return (folder / name).stat().st_mtime
            except FileNotFoundError:
                continue
        return 0.0

    def entries(self) -> list[CachedEnvironment]:
        """Every ready environment, most recently used first."""
        result = []
        for key in self.keys():
            if not self.is_ready(key):
                continue
            spec = self.spec(key) or {}
            resolved = spec.get("resolved") or {}
            folder = self.root / key
            result.append(
                CachedEnvironment(
                    key=key,
                    path=folder,
                    size_bytes=_size(folder),
                    created=(folder / READY).stat().st_mtime,
                    last_used=self.last_used(key),
                    python_version=str(resolved.get("interpreter_version") or "?"),
                    requirement_count=len(resolved.get("requirements") or []),
                    source=source_summary(resolved.get("source") or {}),
                )
            )
        return sorted(result, key=lambda c: c.last_used, reverse=True)

    def prune(
        self, older_than: float | None = None, keep: int | None = None, now: float | None = None
    ) -> list[str]:
        """Remove environments unused for ``older_than`` seconds and/or all but ``keep``.

        Folders of crashed builds go too. An environment whose lock is held (being built,
        or in use by a job) is never removed. Returns the keys removed.
        """
        if older_than is None and keep is None:
            raise UsageError("say what to prune: older_than and/or keep")
        if older_than is not None and older_than < 0:
            raise UsageError(f"older_than must be >= 0 seconds; got {older_than}")
        if keep is not None and keep < 0:
            raise UsageError(f"keep must be a whole number >= 0; got {keep}")
        moment = time.time() if now is None else now
        ready = sorted(
            (k for k in self.keys() if self.is_ready(k)), key=self.last_used, reverse=True
        )
        crashed = [k for k in self.keys() if not self.is_ready(k)]
        doomed = []
        for index, key in enumerate(ready):
            too_old = older_than is not None and moment - self.last_used(key) > older_than
            if too_old or (keep is not None and index >= keep):
                doomed.append(key)
        removed = []
        for key in crashed + doomed:
            with self.lock(key, blocking=False) as held:
                if not held or not self.path(key).exists():
                    continue
                # looked at again under the lock: a build may have finished, a job used it
                if key in crashed and self.is_ready(key):
                    continue
                recent = older_than is not None and moment - self.last_used(key) <= older_than
                if key in doomed and keep is None and recent:
                    continue
                self.remove(key)
                removed.append(key)
        return removed


def _size(folder: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(base, name)).st_size
            except OSError:
                continue
    return total
