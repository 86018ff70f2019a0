"""Job data on remote storage: inputs staged before the job starts, outputs published after.

The job bootstrap is standard-library only and reads and writes local paths; everything
that talks to Azure Blob, ADLS or S3 happens here, on the control plane.

- ``ro_mount`` of a remote path stages a **cached copy**: the files are downloaded once into
  ``<MILL_HOME>/cache/data/<key>/`` (the key hashes the datastore, the path and the
  content's fingerprint: ETags or sizes and times), made read-only, and shared by every job
  that mounts the same unchanged data. It is not a lazy, streaming mount.
- ``download`` copies the files into the job's own run folder.
- ``rw_mount`` and ``upload`` outputs on a remote datastore are written to a local folder of
  the run and uploaded when the job ends (``Finalizing``), before the job is reported done.
- An output with ``name:`` (and ``version:``) is registered as a data asset once the job
  completes.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from mill import specs
from mill.domain.entities import Job
from mill.errors import MillError
from mill.hashing import content_hash
from mill.services import datastores
from mill.services.context import Context
from mill.storage.filesystems import DatastoreFS

__all__ = ["fetch_input", "is_remote", "publish_outputs", "register_outputs"]

log = logging.getLogger(__name__)

_DATA_ASSET_TYPES = ("uri_file", "uri_folder", "mltable")


def is_remote(ctx: Context, workspace: str, uri: str) -> bool:
    """Whether a data path lives somewhere the job process cannot read as a local path."""
    kind = specs.classify_path(uri)
    if kind == "cloud":
        return True
    if kind != "datastore":
        return False
    parsed = specs.parse_datastore_uri(uri)
    if parsed is None:
        return False
    return ctx.store.get_datastore(workspace, parsed[0]).type != "local"


def fetch_input(
    ctx: Context, workspace: str, name: str, uri: str, mode: str, run_dir: Path
) -> Path:
    """Make a remote input readable as a local path (see the module docstring)."""
    fs, relative = datastores.locate(ctx, workspace, uri)
    stats = fs.stat(relative)
    if stats.kind == "missing":
        raise MillError(f"input {name!r}: nothing found at {uri} (datastore {fs.name!r})")
    basename = _basename(relative) or fs.name
    if mode in ("download", "eval_download"):
        target = run_dir / "inputs" / name / basename
        fs.get(relative, target)
        return target
    key = content_hash(f"{fs.name}\n{fs.native_uri(relative)}\n{stats.fingerprint}".encode())
    cached = ctx.settings.home / "cache" / "data" / key[:32]
    target = cached / basename
    if not (cached / ".complete").exists():
        _download_into_cache(fs, relative, cached, basename)
    return target


def publish_outputs(ctx: Context, job: Job) -> list[str]:
    """Upload the job's remote outputs from its run folder; returns the problems met."""
    problems: list[str] = []
    run_dir = Path(job.run_dir or ctx.run_dir(job.workspace, job.name))
    for name, spec in (job.spec.get("outputs") or {}).items():
        if spec.get("mode") == "direct" or not is_remote(ctx, job.workspace, spec["path"]):
            continue
        local = local_output(run_dir, name, spec)
        try:
            if not local.exists():
                if spec.get("type") == "uri_file":
                    problems.append(f"output {name!r}: the job wrote nothing at {local}")
                continue
            fs, relative = datastores.locate(ctx, job.workspace, spec["path"])
            fs.put(local, relative)
            log.info("job %s: uploaded output %s to %s", job.name, name, spec["path"])
        except MillError as exc:
            problems.append(f"could not upload output {name!r} to {spec['path']}: {exc.message}")
    return problems


def local_output(run_dir: Path, name: str, spec: dict[str, Any]) -> Path:
    """Where the job writes a remote output before it is uploaded."""
    local = run_dir / "outputs" / name
    if spec.get("type") == "uri_file":
        local = local / (_basename(spec["path"]) or name)
    return local


def register_outputs(ctx: Context, job: Job) -> list[str]:
    """Register each output that has ``name:`` as a data asset version; returns problems."""
    from mill.services import data

    problems: list[str] = []
    for output, spec in (job.spec.get("outputs") or {}).items():
        asset_name = spec.get("name")
        if not asset_name or spec.get("type", "uri_folder") not in _DATA_ASSET_TYPES:
            continue
        body: dict[str, Any] = {
            "name": asset_name,
            "type": spec.get("type", "uri_folder"),
            "path": spec["path"],
            "description": spec.get("description") or f"output {output} of job {job.name}",
            "source": {"kind": "job_output", "job": job.name, "output": output},
        }
        if spec.get("version") is not None:
            body["version"] = str(spec["version"])
        try:
            created = data.create(ctx, job.workspace, body)
            log.info("job %s: registered %s", job.name, created["id"])
        except MillError as exc:
            problems.append(f"could not register output {output!r} as {asset_name}: {exc.message}")
    return problems


def _download_into_cache(fs: DatastoreFS, relative: str, cached: Path, basename: str) -> None:
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=cached.name + ".", dir=cached.parent))
    try:
        fs.get(relative, partial / basename)
        (partial / ".complete").touch()
        _make_read_only(partial / basename)
        try:
            partial.rename(cached)
        except OSError:  # another job staged the same data first: use theirs
            if not (cached / ".complete").exists():
                raise
    finally:
        if partial.exists():
            _make_writable(partial)
            shutil.rmtree(partial, ignore_errors=True)


def _make_read_only(path: Path) -> None:
    if path.is_file():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        return
    for folder, dirs, files in os.walk(path, topdown=False):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
        for name in dirs:
            os.chmod(os.path.join(folder, name), 0o555)
    path.chmod(0o555)


def _make_writable(path: Path) -> None:
    for folder, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            try:
                os.chmod(os.path.join(folder, name), 0o755)
            except OSError:
                pass
        try:
            os.chmod(folder, 0o755)
        except OSError:
            pass


def _basename(relative: str) -> str:
    return relative.rstrip("/").rsplit("/", 1)[-1]
