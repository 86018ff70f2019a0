"""Datastore paths: thin wrappers kept for callers of :mod:`mill.storage.filesystems`."""

from __future__ import annotations

from pathlib import Path

from mill.domain.entities import Datastore
from mill.errors import NotSupportedError
from mill.storage.filesystems import DatastoreFS

__all__ = ["datastore_uri", "local_path"]


def local_path(datastore: Datastore, relative: str) -> Path:
    """The local file or folder for ``relative`` inside a local datastore; never outside it."""
    if datastore.type != "local":
        raise NotSupportedError(
            f"datastore {datastore.name!r} is of type {datastore.type!r}; a local path exists "
            "only for local datastores (open it with mill.storage.filesystems.DatastoreFS)"
        )
    fs = DatastoreFS(datastore.name, datastore.type, datastore.config, None)
    return Path(fs.native_uri(relative.lstrip("/")))


def datastore_uri(datastore: str, relative: str) -> str:
    return f"azureml://datastores/{datastore}/paths/{relative.lstrip('/')}"
