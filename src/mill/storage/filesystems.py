"""Datastores opened with their credentials: one adapter over fsspec for every storage type.

``local`` uses fsspec's local filesystem, both Azure types use adlfs
(``AzureBlobFileSystem``, through the *blob* endpoint) and ``s3`` uses s3fs. Everything a
dependency raises is translated here into :class:`~mill.errors.DatastoreError` (or
:class:`~mill.errors.UsageError` for a bad path or config), whose message names the
datastore and the path and never holds a credential: every upstream text goes through
:func:`redact` with the credential values first.

``azure_data_lake_gen2`` is reached through the blob endpoint of its account (the
filesystem is a blob container; Azure's multi-protocol access makes this work on
hierarchical-namespace accounts). So Mill does not use the ``dfs`` endpoint, directory
renames, or POSIX ACLs. The tests run gen2 datastores against Azurite, which emulates
neither the ``dfs`` endpoint nor hierarchical-namespace operations nor ACLs: they check the
blob-endpoint path Mill uses, not gen2-specific behaviour.

Transfers stream: files go in chunks of :data:`CHUNK_BYTES` (multipart uploads / staged
blocks for object stores), folders move :data:`FOLDER_CONCURRENCY` files at a time through
fsspec's batched async ``put``/``get``, so memory stays flat whatever the size.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, NoReturn
from urllib.parse import quote, quote_plus, unquote

from fsspec.callbacks import Callback

from mill.errors import DatastoreError, MillError, UsageError

__all__ = [
    "CHUNK_BYTES",
    "DATASTORE_TYPES",
    "FOLDER_CONCURRENCY",
    "DatastoreFS",
    "PathStats",
    "redact",
]

DATASTORE_TYPES = ("local", "azure_blob", "azure_data_lake_gen2", "s3")
AZURE_TYPES = ("azure_blob", "azure_data_lake_gen2")

CHUNK_BYTES = 8 * 2**20
# Files in flight at once in a folder transfer. Uploads hold their files' chunks in memory
# (s3fs reads a file below 2 chunks whole), so 4 at a time keeps a control plane that
# uploads 1 GiB under 200 MB; downloads stream to disk, and 8 at a time hides latency.
FOLDER_CONCURRENCY = 4
DOWNLOAD_CONCURRENCY = 8
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 60

_REQUIRED = {
    "local": ("path",),
    "azure_blob": ("account_name", "container_name"),
    "azure_data_lake_gen2": ("account_name", "filesystem"),
    "s3": ("bucket",),
}


@dataclass(frozen=True)
class PathStats:
    """What is at a datastore path: a file, a folder (with files below it), or nothing."""

    kind: str  # "file" | "folder" | "missing"
    size_bytes: int
    file_count: int
    fingerprint: str  # changes when any file's content changes; "" when missing


MISSING = PathStats("missing", 0, 0, "")


class DatastoreFS:
    """A datastore opened with its credentials.

    ``relative`` paths use forward slashes and are relative to the datastore's root (the
    local folder, the container / filesystem, or the bucket); ``..`` segments, absolute
    paths and NUL are refused. Methods raise :class:`DatastoreError` for storage failures.
    """

    def __init__(
        self,
        name: str,
        type: str,
        config: dict[str, Any],
        credentials: dict[str, str] | None,
    ) -> None:
        if type not in DATASTORE_TYPES:
            raise UsageError(
                f"datastore {name!r} has type {type!r}; "
                f"expected one of {', '.join(DATASTORE_TYPES)}"
            )
        missing = [k for k in _REQUIRED[type] if not config.get(k)]
        if missing:
            raise UsageError(f"datastore {name!r} ({type}) needs {', '.join(missing)}")
        self.name = name
        self.type = type
        self.config = dict(config)
        self._credentials = dict(credentials) if credentials else None
        # Values under 4 characters are no secret worth hiding, and replacing them would
        # shred every message.
        self._secrets = [str(v) for v in (credentials or {}).values() if v and len(str(v)) >= 4]
        self._fs: Any = None

    # ----------------------------------------------------------------- addressing

    def native_uri(self, relative: str) -> str:
        """The URI other tools know this path by (wasbs://, abfss://, s3://, a local path)."""
        rel = self._clean(relative)
        if self.type == "local":
            return str(self._local(rel))
        if self.type == "s3":
            return _join(f"s3://{self.config['bucket']}", rel)
        endpoint = self.config.get("endpoint") or "core.windows.net"
        account = self.config["account_name"]
        if self.type == "azure_blob":
            base = f"wasbs://{self.config['container_name']}@{account}.blob.{endpoint}"
        else:
            base = f"abfss://{self.config['filesystem']}@{account}.dfs.{endpoint}"
        return _join(base, rel)

    def handoff(self) -> dict[str, Any]:
        """What rebuilds this filesystem in a child process (credentials included: for
        :mod:`mill.storage.transfer_child`'s stdin only, never to print or store)."""
        return {
            "name": self.name,
            "type": self.type,
            "config": dict(self.config),
            "credentials": self._credentials,
        }

    def local_root(self) -> Path | None:
        """The folder of a local datastore, else None."""
        if self.type != "local":
            return None
        return Path(self.config["path"]).expanduser().resolve()

    def endpoint(self) -> str:
        """The service this datastore talks to, as said in 'cannot reach' errors."""
        if self.type == "local":
            return str(self.local_root())
        if self.type == "s3":
            return str(self.config.get("endpoint_url") or "s3.amazonaws.com")
        return _azure_account_url(self.config)

    # ----------------------------------------------------------------- operations

    def check(self) -> None:
        """Raise :class:`DatastoreError` unless the storage answers and takes the credentials."""
        if self.type == "local":
            root = self.local_root()
            assert root is not None
            if not root.is_dir():
                raise DatastoreError(f"folder {root} of datastore {self.name!r} not found")
            return
        with self._translate("check", ""):
            fs = self.fs
            if self.type == "s3":
                fs.call_s3("head_bucket", Bucket=self.config["bucket"])
            else:
                from fsspec.asyn import sync

                # One listing page of one name: allowed to keys, container SAS tokens with
                # list rights and anonymous readers of public containers alike.
                client = fs.service_client.get_container_client(self._container)
                sync(fs.loop, _first_page, client.list_blobs(results_per_page=1).by_page())

    def stat(self, relative: str) -> PathStats:
        """Kind, size, file count and fingerprint of a path (``kind="missing"`` if absent)."""
        return self._stat_files(self._clean(relative))[0]

    def _stat_files(self, rel: str) -> tuple[PathStats, list[tuple[str, dict[str, Any]]]]:
        """The stats of ``rel`` and its files (name below ``rel``, info): one listing."""
        path = self._path(rel)
        with self._translate("stat", rel):
            try:
                info = self.fs.info(path)
            except FileNotFoundError:
                return MISSING, []
            if info.get("type") != "directory":
                files = [(posixpath.basename(rel), info)]
                size = int(info.get("size") or 0)
                return PathStats("file", size, 1, _fingerprint([("", info)])), files
            files = self._find(path)
        size = sum(int(i.get("size") or 0) for _, i in files)
        return PathStats("folder", size, len(files), _fingerprint(files)), files

    def iter_files(self, relative: str) -> Iterator[tuple[str, int]]:
        """``(path below relative, size)`` for each file under a folder, or the file itself."""
        _, files = self._require(self._clean(relative))
        for name, info in files:
            yield name, int(info.get("size") or 0)

    def put(
        self, local: Path, relative: str, progress: Callable[[int], None] | None = None
    ) -> PathStats:
        """Upload a local file or folder to ``relative``; ``progress(bytes)`` as bytes go out."""
        rel = self._clean(relative)
        local = Path(local)
        if not local.exists():
            raise UsageError(f"{local} does not exist (upload to datastore {self.name!r})")
        target = self._path(rel)
        callback = _Progress(progress, local_side=1)
        with self._translate("upload to", rel):
            if local.is_dir():
                lpaths, rpaths = [], []
                for path in sorted(p for p in local.rglob("*") if p.is_file()):
                    lpaths.append(str(path))
                    rpaths.append(_join(target, path.relative_to(local).as_posix()))
                if self.type == "local":
                    Path(target).mkdir(parents=True, exist_ok=True)
                if lpaths:
                    self.fs.put(lpaths, rpaths, callback=callback, **self._batch_kwargs())
            else:
                with callback.branched(str(local), target) as child:
                    self.fs.put_file(str(local), target, callback=child, **self._file_kwargs())
        return self.stat(rel)

    def get(
        self, relative: str, local: Path, progress: Callable[[int], None] | None = None
    ) -> PathStats:
        """Download a file to the local file ``local``, or a folder into the folder ``local``."""
        rel = self._clean(relative)
        stats, files = self._require(rel)
        source = self._path(rel)
        local = Path(local)
        callback = _Progress(progress, local_side=2)
        with self._translate("download", rel):
            if stats.kind == "file":
                local.parent.mkdir(parents=True, exist_ok=True)
                with callback.branched(source, str(local)) as child:
                    self.fs.get_file(source, str(local), callback=child)
                return stats
            local.mkdir(parents=True, exist_ok=True)
            rpaths = [_join(source, name) for name, _ in files]
            lpaths = [str(local.joinpath(*name.split("/"))) for name, _ in files]
            for parent in {os.path.dirname(p) for p in lpaths}:
                os.makedirs(parent, exist_ok=True)
            if rpaths:
                # no chunksize: s3fs would split every file above it into ranged GETs
                self.fs.get(rpaths, lpaths, callback=callback, **self._batch_kwargs(get=True))
        return stats

    def open_read(self, relative: str) -> BinaryIO:
        """A binary stream of a file, read in chunks as it is consumed."""
        rel = self._clean(relative)
        with self._translate("read", rel):
            raw = self.fs.open(self._path(rel), "rb", block_size=CHUNK_BYTES)
        return _TranslatingFile(raw, self, rel, "read")

    def open_write(self, relative: str) -> BinaryIO:
        """A binary stream to a file; chunks go out as they fill, the file appears on close."""
        rel = self._clean(relative)
        if not rel:
            raise UsageError(f"datastore {self.name!r}: cannot write to the datastore's root")
        with self._translate("write", rel):
            raw = self.fs.open(self._path(rel), "wb", block_size=CHUNK_BYTES)
        return _TranslatingFile(raw, self, rel, "write")

    def delete(self, relative: str) -> None:
        """Delete a file or a folder with everything below it; a missing path is not an error."""
        rel = self._clean(relative)
        if not rel:
            raise UsageError(f"datastore {self.name!r}: refusing to delete the datastore's root")
        path = self._path(rel)
        with self._translate("delete", rel):
            try:
                self.fs.rm(path, recursive=True)
            except FileNotFoundError:
                pass

    # ----------------------------------------------------------------- internals

    @property
    def fs(self) -> Any:
        """The fsspec filesystem, opened on first use."""
        if self._fs is None:
            self._fs = self._open()
        return self._fs

    @property
    def _container(self) -> str:
        if self.type == "azure_blob":
            return str(self.config["container_name"])
        if self.type == "azure_data_lake_gen2":
            return str(self.config["filesystem"])
        return str(self.config["bucket"])

    def _open(self) -> Any:
        if self.type == "local":
            from fsspec.implementations.local import LocalFileSystem

            return LocalFileSystem(auto_mkdir=True)
        if self.type == "s3":
            return _open_s3(self.config, self._credentials)
        return _open_azure(self.config, self._credentials)

    def _clean(self, relative: str) -> str:
        """Validate a relative path and normalise it ("" is the root)."""
        if "\x00" in relative:
            raise UsageError(f"datastore {self.name!r}: path {relative!r} contains NUL")
        if relative.startswith("/") or re.match(r"^[A-Za-z]:[\\/]", relative):
            raise UsageError(
                f"datastore {self.name!r}: path {relative!r} must be relative to the datastore"
            )
        parts = [p for p in relative.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise UsageError(f"datastore {self.name!r}: path {relative!r} must not contain '..'")
        rel = "/".join(parts)
        if self.type == "local":
            self._local(rel)
        return rel

    def _local(self, rel: str) -> Path:
        root = self.local_root()
        assert root is not None
        target = root.joinpath(*rel.split("/")).resolve() if rel else root
        if target != root and root not in target.parents:
            raise UsageError(f"datastore {self.name!r}: path {rel!r} escapes the datastore")
        return target

    def _path(self, rel: str) -> str:
        if self.type == "local":
            return str(self._local(rel))
        return _join(self._container, rel)

    def _require(self, rel: str) -> tuple[PathStats, list[tuple[str, dict[str, Any]]]]:
        stats, files = self._stat_files(rel)
        if stats.kind == "missing":
            raise DatastoreError(
                f"{_show(rel)} not found on datastore {self.name!r}",
                details={"datastore": self.name, "path": rel},
            )
        return stats, files

    def _find(self, path: str) -> list[tuple[str, dict[str, Any]]]:
        """Files below ``path`` as (relative name, info), sorted."""
        found = self.fs.find(path, detail=True)
        prefix = path.rstrip("/") + "/"
        out = []
        for full, info in found.items():
            if info.get("type") == "directory":
                continue
            full = str(full)
            if self.type == "local":
                full = full.replace(os.sep, "/")
            name = full[len(prefix) :] if full.startswith(prefix) else posixpath.basename(full)
            if name:
                out.append((name, info))
        return sorted(out, key=lambda x: x[0])

    def _file_kwargs(self) -> dict[str, Any]:
        return {"chunksize": CHUNK_BYTES} if self.type == "s3" else {}

    def _batch_kwargs(self, get: bool = False) -> dict[str, Any]:
        if self.type == "local":
            return {}
        if get:
            return {"batch_size": DOWNLOAD_CONCURRENCY}
        return {"batch_size": FOLDER_CONCURRENCY, **self._file_kwargs()}

    def _translate(self, action: str, rel: str) -> _Translate:
        return _Translate(self, action, rel)

    def fail(self, action: str, rel: str, exc: BaseException) -> NoReturn:
        """Raise the :class:`DatastoreError` that says what ``exc`` means, secrets removed."""
        raise _translate_error(self, action, rel, exc) from None


async def _first_page(pages: Any) -> None:
    async for page in pages:
        async for _ in page:
            break
        break


class _Translate:
    """``with``-block that turns any dependency error into a DatastoreError."""

    def __init__(self, ds: DatastoreFS, action: str, rel: str) -> None:
        self.ds, self.action, self.rel = ds, action, rel

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None or isinstance(exc, MillError) or not isinstance(exc, Exception):
            return False
        self.ds.fail(self.action, self.rel, exc)


def _translate_error(ds: DatastoreFS, action: str, rel: str, exc: BaseException) -> DatastoreError:
    text = redact(_describe(exc), ds._secrets)
    where = f"{_show(rel)} on datastore {ds.name!r}"
    doing = action if action == "check" else f"{action} {_show(rel)}"
    details = {"datastore": ds.name, "path": rel}
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    status = _status(chain)
    if isinstance(exc, FileNotFoundError) or status == 404 or "ResourceNotFoundError" in names:
        message = (
            f"{where} not found"
            if rel
            else f"the {_what(ds)} of datastore {ds.name!r} was not found"
        )
        if "container" in text.lower() or "bucket" in text.lower():
            message = f"{_what(ds)} {ds._container!r} of datastore {ds.name!r} not found ({doing})"
        return DatastoreError(message, details=details)
    if (
        isinstance(exc, PermissionError)
        or status in (401, 403)
        or names & {"ClientAuthenticationError", "NoCredentialsError", "PartialCredentialsError"}
    ):
        return DatastoreError(
            f"credentials for datastore {ds.name!r} were refused ({doing}: {text})",
            hint="update the datastore's credentials",
            details=details,
        )
    if names & _UNREACHABLE or any(isinstance(e, (ConnectionError, TimeoutError)) for e in chain):
        return DatastoreError(
            f"cannot reach {ds.endpoint()} for datastore {ds.name!r} ({doing}: {text})",
            details=details,
        )
    return DatastoreError(f"{action} {where} failed: {text}", details=details)


_UNREACHABLE = {
    "ServiceRequestError",
    "ServiceRequestTimeoutError",
    "ServiceResponseTimeoutError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "FSTimeoutError",
}


def _chain(exc: BaseException) -> list[BaseException]:
    out: list[BaseException] = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        out.append(cur)
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return out


def _status(chain: list[BaseException]) -> int | None:
    for e in chain:
        code = getattr(e, "status_code", None)
        if isinstance(code, int):
            return code
        response = getattr(e, "response", None)
        if isinstance(response, dict):
            meta = response.get("ResponseMetadata") or {}
            if isinstance(meta.get("HTTPStatusCode"), int):
                return int(meta["HTTPStatusCode"])
    return None


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}"[:500]


def _what(ds: DatastoreFS) -> str:
    return {"s3": "bucket", "azure_blob": "container", "azure_data_lake_gen2": "filesystem"}.get(
        ds.type, "folder"
    )


def _show(rel: str) -> str:
    return repr(rel) if rel else "the root"


# --------------------------------------------------------------------- backends


def _azure_account_url(config: dict[str, Any]) -> str:
    if config.get("account_url"):
        return str(config["account_url"]).rstrip("/")
    protocol = str(config.get("protocol") or "https")
    scheme = {"wasbs": "https", "wasb": "http", "abfss": "https", "abfs": "http"}.get(
        protocol, protocol
    )
    endpoint = config.get("endpoint") or "core.windows.net"
    return f"{scheme}://{config['account_name']}.blob.{endpoint}"


def _open_azure(config: dict[str, Any], credentials: dict[str, str] | None) -> Any:
    from adlfs import AzureBlobFileSystem
    from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

    account_url = _azure_account_url(config)
    creds = credentials or {}

    class MillBlobFileSystem(AzureBlobFileSystem):
        """adlfs with short timeouts, few retries and chunked transfers."""

        def do_connect(self) -> None:
            credential: Any = None
            url = account_url
            if creds.get("account_key"):
                credential = {
                    "account_name": config["account_name"],
                    "account_key": creds["account_key"],
                }
            elif creds.get("sas_token"):
                url = f"{account_url}?{creds['sas_token'].lstrip('?')}"
            elif self.credential is not None:
                credential = self.credential
            self.account_url = account_url
            self.service_client = BlobServiceClient(
                url,
                credential=credential,
                retry_policy=ExponentialRetry(
                    initial_backoff=1, increment_base=2, retry_total=1, random_jitter_range=0
                ),
                connection_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                max_single_put_size=CHUNK_BYTES,
                max_block_size=CHUNK_BYTES,
                max_single_get_size=CHUNK_BYTES,
                max_chunk_get_size=CHUNK_BYTES,
            )

    kwargs: dict[str, Any] = {
        "account_name": config["account_name"],
        "use_listings_cache": False,
        "blocksize": CHUNK_BYTES,
        "skip_instance_cache": True,
    }
    if creds.get("account_key"):
        kwargs["account_key"] = creds["account_key"]
    elif creds.get("sas_token"):
        kwargs["sas_token"] = creds["sas_token"]
    elif creds.get("client_id"):
        kwargs.update(
            tenant_id=creds.get("tenant_id"),
            client_id=creds["client_id"],
            client_secret=creds.get("client_secret"),
        )
    else:
        kwargs["anon"] = True
    return MillBlobFileSystem(**kwargs)


def _open_s3(config: dict[str, Any], credentials: dict[str, str] | None) -> Any:
    from s3fs import S3FileSystem

    client_kwargs: dict[str, Any] = {}
    if config.get("region"):
        client_kwargs["region_name"] = config["region"]
    kwargs: dict[str, Any] = {
        "endpoint_url": config.get("endpoint_url") or None,
        "client_kwargs": client_kwargs,
        "config_kwargs": {
            "connect_timeout": CONNECT_TIMEOUT_S,
            "read_timeout": READ_TIMEOUT_S,
            "retries": {"max_attempts": 2, "mode": "standard"},
        },
        "use_listings_cache": False,
        "skip_instance_cache": True,
    }
    if credentials:
        kwargs["key"] = credentials.get("access_key_id")
        kwargs["secret"] = credentials.get("secret_access_key")
        if credentials.get("session_token"):
            kwargs["token"] = credentials["session_token"]
    else:
        kwargs["anon"] = True
    fs = S3FileSystem(**kwargs)
    fs.retries = 2  # s3fs's own retry loop, on top of botocore's
    return fs


# --------------------------------------------------------------------- helpers


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if rel else base


def _fingerprint(files: list[tuple[str, dict[str, Any]]]) -> str:
    digest = hashlib.sha256()
    for name, info in files:
        version = (
            info.get("ETag")
            or info.get("etag")
            or info.get("mtime")
            or info.get("last_modified")
            or info.get("LastModified")
        )
        digest.update(f"{name}\0{info.get('size')}\0{version}\n".encode())
    return digest.hexdigest()


class _Progress(Callback):
    """Turns fsspec's per-file callbacks into ``progress(bytes_done_increment)``."""

    def __init__(self, progress: Callable[[int], None] | None, local_side: int) -> None:
        super().__init__()
        self.progress = progress
        self.local_side = local_side

    def branched(self, path_1: str, path_2: str, **kwargs: Any) -> Callback:
        local = path_1 if self.local_side == 1 else path_2
        return _FileProgress(self.progress, local, upload=self.local_side == 1)


class _FileProgress(Callback):
    def __init__(self, progress: Callable[[int], None] | None, local: str, upload: bool) -> None:
        super().__init__()
        self.progress = progress
        self.local = local
        self.upload = upload
        self.reported = 0

    def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
        self._report(int(self.value or 0))

    def close(self) -> None:
        try:
            size = os.path.getsize(self.local)
        except OSError:
            return
        self._report(size)

    def _report(self, done: int) -> None:
        if self.progress is not None and done > self.reported:
            self.progress(done - self.reported)
            self.reported = done


class _TranslatingFile(io.RawIOBase, BinaryIO):
    """A file from the datastore whose errors come out as DatastoreError."""

    def __init__(self, raw: Any, ds: DatastoreFS, rel: str, action: str) -> None:
        super().__init__()
        self._raw, self._ds, self._rel, self._action = raw, ds, rel, action

    def readable(self) -> bool:
        return bool(self._raw.readable())

    def writable(self) -> bool:
        return bool(self._raw.writable())

    def seekable(self) -> bool:
        return bool(self._raw.seekable())

    def read(self, size: int | None = -1) -> bytes:
        with _Translate(self._ds, self._action, self._rel):
            return bytes(self._raw.read(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def write(self, data: Any) -> int:
        with _Translate(self._ds, self._action, self._rel):
            self._raw.write(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        with _Translate(self._ds, self._action, self._rel):
            return int(self._raw.seek(offset, whence))

    def tell(self) -> int:
        return int(self._raw.tell())

    def flush(self) -> None:
        if not self._raw.closed:
            with _Translate(self._ds, self._action, self._rel):
                self._raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            with _Translate(self._ds, self._action, self._rel):
                self._raw.close()
        finally:
            super().close()


# --------------------------------------------------------------------- secrets

_SAS_SIGNATURE = re.compile(r"(?i)(sig=)[^&\s\"']+")


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value, and its URL-quoted forms, replaced by ``***``.

    SAS signatures (``sig=...``) are removed whether or not they are among ``secrets``:
    Azure errors echo signed URLs.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        forms.update({secret, quote(secret, safe=""), quote_plus(secret), quote(secret)})
        if "=" in secret and "&" in secret:  # a SAS token: each of its values is secret too
            for pair in secret.lstrip("?").split("&"):
                value = pair.partition("=")[2]
                if len(value) >= 8:
                    forms.update({value, quote(value, safe=""), unquote(value)})
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, "***")
    return _SAS_SIGNATURE.sub(r"\1***", text)
