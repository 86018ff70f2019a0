"""Code snapshots: a manifest of files by content hash. Identical folders hash alike.

A manifest is ``{"files": [{"path", "sha256", "size", "mode"}, ...]}`` sorted by path; its
digest (``hashing.content_hash``) names the snapshot.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from mill.errors import UsageError
from mill.hashing import content_hash, file_sha256
from mill.storage.ignore import IgnoreRules

__all__ = [
    "build_manifest",
    "load_manifest",
    "manifest_digest",
    "save_manifest",
    "validate_manifest",
]

# Never part of a snapshot, whatever the ignore files say.
_ALWAYS_SKIPPED = {".git", "__pycache__", ".amlignore", ".ipynb_checkpoints"}


def build_manifest(source: Path, prefix: str = "") -> dict[str, Any]:
    """Walk a folder (or take one file), honouring .amlignore/.gitignore, and hash each file.

    ``prefix`` is put in front of every path (e.g. the folder's own name for data uploads).
    """
    files: list[dict[str, Any]] = []
    if source.is_file():
        files.append(_entry(source, _join(prefix, source.name)))
    else:
        _walk(source, "", IgnoreRules().extended("", source), prefix, files)
    files.sort(key=lambda f: f["path"])
    return {"files": files}


def manifest_digest(manifest: dict[str, Any]) -> str:
    return content_hash({"files": manifest["files"]})


def validate_manifest(manifest: Any) -> list[dict[str, Any]]:
    """Check a manifest that came over the wire; paths must stay inside their folder."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise UsageError("manifest must be an object with a 'files' list")
    out = []
    for item in manifest["files"]:
        if not isinstance(item, dict):
            raise UsageError("manifest entries must be objects with path, sha256, size, mode")
        path = str(item.get("path", ""))
        parts = path.split("/")
        if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise UsageError(f"manifest path {path!r} is not a relative path inside the snapshot")
        out.append(
            {
                "path": path,
                "sha256": str(item.get("sha256", "")),
                "size": int(item.get("size", 0)),
                "mode": int(item.get("mode", 0o644)) & 0o777,
            }
        )
    return out


def save_manifest(folder: Path, digest: str, manifest: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.json"
    if not path.exists():
        # A temporary file of its own: concurrent uploads of the same files write the same
        # manifest at once, and each must rename a complete file of its own into place.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{digest}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(manifest, out)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return path


def load_manifest(folder: Path, digest: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / f"{digest}.json").read_text(encoding="utf-8"))
    return data


def _walk(
    folder: Path, rel: str, rules: IgnoreRules, prefix: str, out: list[dict[str, Any]]
) -> None:
    with os.scandir(folder) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name in _ALWAYS_SKIPPED:
                continue
            rel_path = f"{rel}/{entry.name}" if rel else entry.name
            is_dir = entry.is_dir(follow_symlinks=True)
            if rules.ignored(rel_path, is_dir):
                continue
            path = Path(entry.path)
            if is_dir:
                _walk(path, rel_path, rules.extended(rel_path, path), prefix, out)
            elif entry.is_file(follow_symlinks=True):
                out.append(_entry(path, _join(prefix, rel_path)))


def _entry(path: Path, rel_path: str) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": rel_path,
        "sha256": file_sha256(path),
        "size": st.st_size,
        "mode": stat.S_IMODE(st.st_mode) | 0o600,
    }


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name
