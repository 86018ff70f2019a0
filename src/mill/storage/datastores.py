"""Datastore paths. This version has local-folder datastores; others arrive with fsspec."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from mill.domain.entities import Datastore
from mill.errors import NotSupportedError, UsageError

__all__ = ["datastore_uri", "local_path"]


def local_path(datastore: Datastore, relative: str) -> Path:
    """The local file or folder for ``relative`` inside a local datastore; never outside it."""
    if datastore.type != "local":
        raise NotSupportedError(
            f"datastore {datastore.name!r} is of type {datastore.type!r}; this version reads "
            "local datastores only"
        )
    root = Path(datastore.config["path"]).resolve()
    parts = PurePosixPath(relative.strip("/")).parts
    if any(p == ".." for p in parts):
        raise UsageError(f"datastore path {relative!r} must not contain '..'")
    target = root.joinpath(*parts).resolve() if parts else root
    if target != root and root not in target.parents:
        raise UsageError(f"datastore path {relative!r} escapes datastore {datastore.name!r}")
    return target


def datastore_uri(datastore: str, relative: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{relative.lstrip('/')}"
