"""Client-side uploads: code snapshots and local data, each file sent once by content hash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from mill.client.http import MillClient
from mill.storage.snapshots import build_manifest

__all__ = ["portable_environment", "upload_code", "upload_local_data"]

_CHUNK = 1 << 20

Progress = Callable[[str], None]


def upload_code(client: MillClient, folder: Path, progress: Progress | None = None) -> str:
    """Snapshot a code folder (honouring .amlignore/.gitignore); returns ``snapshot:<digest>``."""
    manifest = build_manifest(folder)
    _send_missing(client, folder, manifest, strip_prefix="", progress=progress)
    snapshot = client.create_snapshot(manifest)
    return f"snapshot:{snapshot['id']}"


def upload_local_data(client: MillClient, path: Path, progress: Progress | None = None) -> str:
    """Upload a local file or folder onto the default datastore; returns its azureml:// URI."""
    prefix = "" if path.is_file() else path.name
    manifest = build_manifest(path, prefix=prefix)
    _send_missing(client, path, manifest, strip_prefix=prefix, progress=progress)
    uri = client.upload_data(manifest)["uri"]
    return f"{uri}{path.name}" if path.is_file() else f"{uri}{path.name}/"


def portable_environment(
    client: MillClient, environment: dict[str, Any], progress: Progress | None = None
) -> dict[str, Any]:
    """An environment with no local paths: the conda file inline, the build context uploaded."""
    import yaml

    result = dict(environment)
    conda = result.get("conda_file")
    if isinstance(conda, str) and Path(conda).is_file():
        result["conda_file"] = yaml.safe_load(Path(conda).read_text(encoding="utf-8"))
    build = result.get("build")
    if isinstance(build, dict) and Path(str(build.get("path", ""))).is_dir():
        result["build"] = {**build, "path": upload_code(client, Path(build["path"]), progress)}
    return result


def _send_missing(
    client: MillClient,
    root: Path,
    manifest: dict[str, Any],
    strip_prefix: str,
    progress: Progress | None,
) -> None:
    files = manifest["files"]
    missing = set(client.missing_blobs(sorted({f["sha256"] for f in files})))
    if not missing:
        return
    total = sum(f["size"] for f in files if f["sha256"] in missing)
    if progress:
        progress(f"Uploading {root.name}: {len(missing)} file(s), {_human(total)}")
    for entry in files:
        digest = entry["sha256"]
        if digest not in missing:
            continue
        missing.discard(digest)
        if root.is_file():
            source = root
        else:
            relative = entry["path"][len(strip_prefix) + 1 :] if strip_prefix else entry["path"]
            source = root / relative
        client.put_blob(digest, _chunks(source))


def _chunks(path: Path) -> Iterator[bytes]:
    """A file's bytes in 1 MiB chunks, so large files upload with flat memory."""
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
