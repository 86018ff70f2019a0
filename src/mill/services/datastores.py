"""Datastores: named storage locations of a workspace, their credentials kept in the vault.

A datastore row holds only what is not secret (account, container, bucket, endpoint...).
Credentials given inline are moved into the workspace vault as secrets owned by the
datastore (``datastore-<name>-<field>``); a ``${{secrets.<name>}}`` reference points at a
secret the user manages. Either way ``config["credentials"]`` records only the form and the
secret names, so nothing read from the store, the API or the CLI carries a value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from mill import specs
from mill.domain.entities import Datastore
from mill.errors import (
    ConflictError,
    DatastoreError,
    MillError,
    NotFoundError,
    SpecError,
    UsageError,
    error_from_envelope,
)
from mill.hashing import canonical_json
from mill.services import secrets
from mill.services.context import Context
from mill.services.formats import iso
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.storage.filesystems import DatastoreFS
from mill.storage.http import HttpSource
from mill.storage.locations import anonymous_fs_for_uri, match_datastore

# Same-host transfers at least this large run in a child process (storage/transfer_child).
CHILD_TRANSFER_BYTES = 64 * 1024 * 1024

__all__ = [
    "create",
    "default_name",
    "delete",
    "list_all",
    "list_files",
    "locate",
    "open_fs",
    "open_read",
    "open_write",
    "set_default",
    "show",
    "transfer_local",
    "update",
]


def create(
    ctx: Context,
    workspace: str,
    body: dict[str, Any],
    *,
    set_default: bool = False,
    check: bool = True,
) -> dict[str, Any]:
    """Register a datastore; with ``check`` its storage must answer to the credentials."""
    spec = specs.parse_datastore(body)
    ctx.store.get_workspace(workspace)
    if any(d.name == spec.name for d in ctx.store.list_datastores(workspace)):
        raise ConflictError(
            f"datastore {spec.name!r} already exists in workspace {workspace!r}",
            hint="change it with: mill datastore update -f <file>",
        )
    credentials, owned = _store_credentials(ctx, workspace, spec)
    datastore = Datastore(
        workspace=workspace,
        name=spec.name,
        type=spec.type,
        config={**spec.config(), **({"credentials": credentials} if credentials else {})},
        description=spec.description,
        tags=dict(spec.tags),
        created_at=time.time(),
    )
    try:
        if check:
            _open(ctx, datastore).check()
        ctx.store.add_datastore(datastore)
    except BaseException:
        for name in owned:  # nothing is left behind by a datastore that was not created
            secrets.delete(ctx, workspace, name, force=True)
        raise
    if set_default:
        ctx.store.set_default_datastore(workspace, spec.name)
    return show(ctx, workspace, spec.name)


def update(
    ctx: Context, workspace: str, body: dict[str, Any], *, check: bool = True
) -> dict[str, Any]:
    """Change a datastore from a full spec: same name and type, new fields and credentials."""
    spec = specs.parse_datastore(body)
    current = ctx.store.get_datastore(workspace, spec.name)
    if current.type != spec.type:
        raise SpecError.one(
            "a datastore's type cannot change",
            field="type",
            value=spec.type,
            allowed=current.type,
            hint="delete it and create it again with the new type",
        )
    if spec.credentials:
        credentials, _ = _store_credentials(ctx, workspace, spec)
    else:
        credentials = current.config.get("credentials")
    config = {**spec.config(), **({"credentials": credentials} if credentials else {})}
    if check:
        _open(ctx, Datastore(workspace, spec.name, spec.type, config)).check()

    def change(d: Datastore) -> None:
        d.config = config
        d.description = spec.description
        d.tags = dict(spec.tags)

    ctx.store.update_datastore(workspace, spec.name, change)
    return show(ctx, workspace, spec.name)


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    return _read(ctx.store.get_datastore(workspace, name))


def list_all(ctx: Context, workspace: str) -> list[dict[str, Any]]:
    return [_read(d) for d in ctx.store.list_datastores(workspace)]


def set_default(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    return _read(ctx.store.set_default_datastore(workspace, name))


def default_name(ctx: Context, workspace: str) -> str:
    for datastore in ctx.store.list_datastores(workspace):
        if datastore.is_default:
            return datastore.name
    return DEFAULT_DATASTORE


def delete(ctx: Context, workspace: str, name: str) -> None:
    """Forget a datastore (its files stay where they are) and the secrets it owns."""
    datastore = ctx.store.get_datastore(workspace, name)
    if name == DEFAULT_DATASTORE:
        raise ConflictError(f"{DEFAULT_DATASTORE} is the workspace's own store; it stays")
    if datastore.is_default:
        raise ConflictError(
            f"datastore {name!r} is the workspace's default",
            hint=f"make another the default first: mill datastore update --name "
            f"{DEFAULT_DATASTORE} --set-default",
        )
    ctx.store.delete_datastore(workspace, name)
    for secret in _owned_secrets(datastore):
        try:
            secrets.delete(ctx, workspace, secret, force=True)
        except MillError:
            pass  # already gone


def open_fs(ctx: Context, workspace: str, name: str) -> DatastoreFS:
    """The datastore's filesystem, opened with its credentials from the vault."""
    return _open(ctx, ctx.store.get_datastore(workspace, name))


def locate(ctx: Context, workspace: str, uri: str) -> tuple[DatastoreFS, str]:
    """Any storage URI as a filesystem and a path inside it.

    ``azureml://datastores/<ds>/paths/<p>`` names the datastore; a ``wasbs://``,
    ``abfss://``, ``s3://`` or blob ``https://`` URI uses the credentials of the registered
    datastore that holds the same account and container (or bucket), and is read
    anonymously (a public container) when none does.
    """
    parsed = specs.parse_datastore_uri(uri)
    if parsed is not None:
        name, relative = parsed
        return open_fs(ctx, workspace, name), relative
    matched = match_datastore(uri, ctx.store.list_datastores(workspace))
    if matched is not None:
        name, relative = matched
        return open_fs(ctx, workspace, name), relative
    kind = specs.classify_path(uri)
    if kind == "http" and not _is_blob_url(uri):
        return HttpSource(uri), ""  # type: ignore[return-value]  # reads like a DatastoreFS
    if kind in ("cloud", "http"):
        return anonymous_fs_for_uri(uri)
    raise UsageError(f"{uri!r} is not a storage URI", hint="use azureml://datastores/... or a URL")


def list_files(ctx: Context, workspace: str, uri: str) -> dict[str, Any]:
    """The files at a storage URI (one for a file), with sizes: what a download needs."""
    fs, relative = locate(ctx, workspace, uri)
    stats = fs.stat(relative)
    if stats.kind == "missing":
        raise NotFoundError(f"nothing found at {uri} (datastore {fs.name!r})")
    listing = [{"path": p, "size": size} for p, size in fs.iter_files(relative)]
    return {"uri": uri, "kind": stats.kind, "size_bytes": stats.size_bytes, "files": listing}


def open_read(ctx: Context, workspace: str, uri: str) -> BinaryIO:
    fs, relative = locate(ctx, workspace, uri)
    try:
        return fs.open_read(relative)
    except DatastoreError:  # a missing file is the caller's 404, not the storage's fault
        if fs.stat(relative).kind != "file":
            raise NotFoundError(f"no file at {uri} (datastore {fs.name!r})") from None
        raise


def open_write(ctx: Context, workspace: str, uri: str) -> BinaryIO:
    """A streamed writer to a file on a datastore (only ``azureml://datastores/`` URIs)."""
    parsed = specs.parse_datastore_uri(uri)
    if parsed is None:
        raise UsageError(
            f"{uri!r} is not on a datastore; uploads go to azureml://datastores/<ds>/paths/<p>"
        )
    name, relative = parsed
    if not relative.strip("/"):
        raise UsageError(f"{uri!r} names no file")
    return open_fs(ctx, workspace, name).open_write(relative)


def transfer_local(
    ctx: Context,
    workspace: str,
    direction: str,
    local: str,
    uri: str,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Move files between a path on this machine and storage, with fsspec's own concurrency.

    The same-host path of ``mill data create`` / ``data download``: the bytes go straight
    between the disk and the storage, not through a second HTTP hop. Only the routes'
    loopback callers get here (see server/routes/datastores.py).
    """
    path = Path(local)
    if not path.is_absolute():
        raise UsageError(f"local path {local!r} must be absolute")
    if direction == "upload":
        parsed = specs.parse_datastore_uri(uri)
        if parsed is None:
            raise UsageError(f"{uri!r} is not on a datastore; uploads go to azureml://datastores/")
        fs, relative = open_fs(ctx, workspace, parsed[0]), parsed[1]
        if fs.local_root() is None and _local_size(path) >= CHILD_TRANSFER_BYTES:
            return _transfer_in_child(fs, direction, path, relative, progress)
        stats = fs.put(path, relative, progress)
    elif direction == "download":  # downloads stream to disk: they stay in this process
        source, relative = locate(ctx, workspace, uri)
        stats = source.get(relative, path, progress)
    else:
        raise UsageError(f"direction must be upload or download, not {direction!r}")
    return {"files": stats.file_count, "bytes": stats.size_bytes, "kind": stats.kind}


def _transfer_in_child(
    fs: DatastoreFS,
    direction: str,
    path: Path,
    relative: str,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """A large transfer in a child process: its memory is gone when it ends."""
    request = {
        **fs.handoff(),
        "direction": direction,
        "local_path": str(path),
        "relative": relative,
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "mill.storage.transfer_child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(json.dumps(request))
    child.stdin.close()
    outcome: dict[str, Any] | None = None
    for line in child.stdout:
        event = json.loads(line)
        if "bytes" in event and progress:
            progress(int(event["bytes"]))
        elif "done" in event or "error" in event:
            outcome = event
    stderr = child.stderr.read() if child.stderr else ""
    child.wait()
    if outcome is None:
        raise DatastoreError(
            f"the transfer process for datastore {fs.name!r} ended without an answer "
            f"(exit {child.returncode}): {stderr.strip()[-500:]}"
        )
    if "error" in outcome:
        raise error_from_envelope(outcome["error"], 502)
    done: dict[str, Any] = outcome["done"]
    return done


def _local_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _dirs, names in os.walk(path)
        for name in names
    )


def _is_blob_url(uri: str) -> bool:
    """``https://<account>.blob.core.windows.net/<container>/...``: Azure storage, not a file."""
    host = (urlsplit(uri).hostname or "").lower()
    return ".blob." in host or ".dfs." in host


def _open(ctx: Context, datastore: Datastore) -> DatastoreFS:
    """The datastore's filesystem; an opened one is reused while nothing about it changed.

    Opening an fsspec filesystem for S3 or Azure builds a client session (connection pool,
    credential chain): far too slow to do per file. The cache key holds everything the
    filesystem depends on: the datastore's config and the versions of its secrets.
    """
    stored = datastore.config.get("credentials") or {}
    secret_names = stored.get("secrets") or {}
    versions = tuple(
        sorted(
            (field, secret, secrets.revision(ctx, datastore.workspace, secret))
            for field, secret in secret_names.items()
        )
    )
    key = (datastore.workspace, datastore.name, canonical_json(datastore.config), versions)
    with ctx.filesystems_lock:
        cached = ctx.filesystems.get(key)
    if cached is not None:
        return cached
    values = {
        field: secrets.reveal(ctx, datastore.workspace, secret)
        for field, secret in secret_names.items()
    }
    values.update(stored.get("fields") or {})
    config = {k: v for k, v in datastore.config.items() if k != "credentials"}
    opened = DatastoreFS(datastore.name, datastore.type, config, values or None)
    with ctx.filesystems_lock:
        stale = [k for k in ctx.filesystems if k[:2] == key[:2] and k != key]
        for old in stale:  # a changed datastore or a rotated secret: drop the old client
            del ctx.filesystems[old]
        ctx.filesystems[key] = opened
    return opened


def _store_credentials(
    ctx: Context, workspace: str, spec: specs.DatastoreSpec
) -> tuple[dict[str, Any] | None, list[str]]:
    """Move inline credential values into the vault; returns the record and the new secrets."""
    form = spec.credential_form()
    if form is None or not spec.credentials:
        return None, []
    names: dict[str, str] = {}
    fields: dict[str, str] = {}
    owned: list[str] = []
    secret_fields = specs.datastore.CREDENTIAL_FIELDS[spec.type][form]
    for field, value in spec.credentials.items():
        if value in (None, ""):
            continue
        if field not in secret_fields:
            fields[field] = str(value)  # authority_url, resource_url: not secret
            continue
        reference = specs.SECRET_REFERENCE.match(str(value).strip())
        if reference:
            secrets.show(ctx, workspace, reference.group(1))  # must exist (NotFound otherwise)
            names[field] = reference.group(1)
            continue
        secret = f"datastore-{spec.name}-{field}"
        secrets.set_secret(
            ctx,
            workspace,
            secret,
            str(value),
            description=f"{field} of datastore {spec.name}",
            managed_by=f"datastore:{spec.name}",
        )
        names[field] = secret
        owned.append(secret)
    record: dict[str, Any] = {"type": form, "secrets": names}
    if fields:
        record["fields"] = fields
    return record, owned


def _owned_secrets(datastore: Datastore) -> list[str]:
    stored = (datastore.config.get("credentials") or {}).get("secrets") or {}
    prefix = f"datastore-{datastore.name}-"
    return [name for name in stored.values() if name.startswith(prefix)]


def _read(datastore: Datastore) -> dict[str, Any]:
    """As ``az ml datastore show`` prints it: credentials by form, never by value."""
    config = {k: v for k, v in datastore.config.items() if k != "credentials"}
    stored = datastore.config.get("credentials")
    credentials: dict[str, Any] | None = None
    if stored:
        credentials = {"type": stored.get("type")}
        credentials.update(stored.get("fields") or {})
        credentials["secrets"] = sorted((stored.get("secrets") or {}).values())
    return {
        "name": datastore.name,
        "type": datastore.type,
        **config,
        "credentials": credentials or {"type": "none"},
        "is_default": datastore.is_default,
        "description": datastore.description,
        "tags": datastore.tags,
        "created_at": iso(datastore.created_at),
        "updated_at": iso(datastore.updated_at),
    }
