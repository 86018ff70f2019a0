"""Uploads: blobs by content hash, code snapshots, and local data copied onto the datastore."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from mill.errors import NotFoundError, UsageError
from mill.services.context import Context
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.storage.blobs import BlobWriter
from mill.storage.datastores import datastore_uri, local_path
from mill.storage.snapshots import load_manifest, manifest_digest, save_manifest, validate_manifest

__all__ = ["blob_writer", "create_snapshot", "missing_blobs", "snapshot_files", "upload_data"]

UPLOAD_PREFIX = "LocalUpload"


def missing_blobs(ctx: Context, workspace: str, digests: Iterable[str]) -> list[str]:
    ctx.store.get_workspace(workspace)
    return ctx.blobs(workspace).missing(digests)


def blob_writer(ctx: Context, workspace: str, digest: str) -> BlobWriter:
    ctx.store.get_workspace(workspace)
    return ctx.blobs(workspace).writer(digest)


def create_snapshot(ctx: Context, workspace: str, manifest: Any) -> dict[str, Any]:
    """Record a code snapshot whose blobs are all uploaded; the same files give the same id."""
    files = _complete_files(ctx, workspace, manifest)
    digest = manifest_digest({"files": files})
    save_manifest(ctx.manifests_dir(workspace), digest, {"files": files})
    created = ctx.store.add_snapshot(workspace, digest, len(files), sum(f["size"] for f in files))
    return {"id": digest, "file_count": len(files), "created": created}


def snapshot_files(ctx: Context, workspace: str, digest: str) -> list[dict[str, Any]]:
    if not ctx.store.has_snapshot(workspace, digest):
        raise NotFoundError(f"code snapshot {digest} not found in workspace {workspace!r}")
    files: list[dict[str, Any]] = load_manifest(ctx.manifests_dir(workspace), digest)["files"]
    return files


def upload_data(ctx: Context, workspace: str, manifest: Any) -> dict[str, Any]:
    """Copy uploaded files onto the default datastore under ``LocalUpload/<digest>/``.

    The same bytes land at the same place, so submitting a job twice uploads its data once.
    """
    files = _complete_files(ctx, workspace, manifest)
    digest = manifest_digest({"files": files})
    datastore = ctx.store.get_datastore(workspace, DEFAULT_DATASTORE)
    relative = f"{UPLOAD_PREFIX}/{digest}"
    ctx.blobs(workspace).materialise(files, local_path(datastore, relative))
    return {"uri": datastore_uri(DEFAULT_DATASTORE, relative) + "/", "digest": digest}


def _complete_files(ctx: Context, workspace: str, manifest: Any) -> list[dict[str, Any]]:
    files = validate_manifest(manifest)
    if not files:
        raise UsageError("nothing to upload: the manifest lists no files")
    missing = ctx.blobs(workspace).missing(f["sha256"] for f in files)
    if missing:
        raise UsageError(
            f"{len(missing)} file(s) of the manifest are not uploaded yet",
            details={"missing": missing[:100]},
        )
    return files
