"""Storage URIs (``wasbs://``, ``abfss://``, ``s3://``, blob ``https://``) and the datastore
that holds each: a URI of a registered account and container (or bucket) is read with that
datastore's credentials; any other is opened anonymously (a public container).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from mill.domain.entities import Datastore
from mill.errors import UsageError
from mill.storage.filesystems import AZURE_TYPES, DatastoreFS

__all__ = ["anonymous_fs_for_uri", "match_datastore"]


_AZURE_URI = re.compile(
    r"^(?P<scheme>wasbs?|abfss?)://(?P<container>[^@/]+)@(?P<account>[^./]+)\.(?P<kind>blob|dfs)\.(?P<endpoint>[^/]+)(?:/(?P<path>.*))?$"
)
_HTTPS_BLOB = re.compile(
    r"^https?://(?P<account>[^./]+)\.(?P<kind>blob|dfs)\.(?P<endpoint>[^/]+)/(?P<container>[^/?#]+)(?:/(?P<path>[^?#]*))?"
)


@dataclass(frozen=True)
class _CloudLocation:
    type: str  # "azure" | "s3"
    account: str  # azure account, "" for s3
    container: str  # container / filesystem / bucket
    endpoint: str  # azure endpoint suffix (core.windows.net)
    path: str


def _parse_cloud_uri(uri: str) -> _CloudLocation | None:
    m = _AZURE_URI.match(uri)
    if m:
        return _CloudLocation(
            "azure", m["account"], m["container"], m["endpoint"], (m["path"] or "").strip("/")
        )
    m = _HTTPS_BLOB.match(uri)
    if m:
        path = unquote(m["path"] or "").strip("/")
        return _CloudLocation("azure", m["account"], m["container"], m["endpoint"], path)
    if uri.startswith("s3://"):
        bucket, _, path = uri[len("s3://") :].partition("/")
        if bucket:
            return _CloudLocation("s3", "", bucket, "", path.strip("/"))
    return None


def match_datastore(uri: str, datastores: Iterable[Datastore]) -> tuple[str, str] | None:
    """``(datastore name, relative path)`` of a registered datastore holding ``uri``, else None.

    Azure URIs (``wasbs://``, ``wasb://``, ``abfss://``, ``abfs://``, ``https://<account>.blob...``)
    match by account, container/filesystem and endpoint, preferring the datastore type the
    URI names (blob vs dfs); ``s3://`` matches by bucket. An ``http(s)://`` URL under a
    datastore's explicit ``account_url`` (Azurite) matches too.
    """
    stores = list(datastores)
    loc = _parse_cloud_uri(uri)
    if loc is None:
        return _match_account_url(uri, stores)
    blob_first = "://" in uri and (".blob." in uri.split("/", 3)[2])
    candidates: list[tuple[int, str]] = []
    for ds in stores:
        cfg = ds.config
        if loc.type == "s3" and ds.type == "s3" and cfg.get("bucket") == loc.container:
            candidates.append((0, ds.name))
        elif loc.type == "azure" and ds.type in AZURE_TYPES:
            container = (
                cfg.get("container_name") if ds.type == "azure_blob" else cfg.get("filesystem")
            )
            endpoint = cfg.get("endpoint") or "core.windows.net"
            if (
                cfg.get("account_name") == loc.account
                and container == loc.container
                and endpoint == loc.endpoint
            ):
                exact = (ds.type == "azure_blob") == blob_first
                candidates.append((0 if exact else 1, ds.name))
    if not candidates:
        return None
    return min(candidates)[1], loc.path


def _match_account_url(uri: str, stores: list[Datastore]) -> tuple[str, str] | None:
    for ds in stores:
        base = str(ds.config.get("account_url") or "").rstrip("/")
        if ds.type not in AZURE_TYPES or not base or not uri.startswith(base + "/"):
            continue
        container, _, path = uri[len(base) + 1 :].partition("/")
        wanted = ds.config.get("container_name") or ds.config.get("filesystem")
        if container == wanted:
            return ds.name, unquote(path.split("?")[0]).strip("/")
    return None


def anonymous_fs_for_uri(uri: str) -> tuple[DatastoreFS, str]:
    """A public (credential-free) DatastoreFS for a cloud URI, and the path inside it."""
    loc = _parse_cloud_uri(uri)
    if loc is None:
        raise UsageError(
            f"{uri!r} is not a storage URI (expected wasbs://, abfss://, s3:// or https://<account>.blob...)"
        )
    if loc.type == "s3":
        return DatastoreFS(f"s3://{loc.container}", "s3", {"bucket": loc.container}, None), loc.path
    scheme = urlsplit(uri).scheme
    protocol = "http" if scheme in ("http", "wasb", "abfs") else "https"
    config = {
        "account_name": loc.account,
        "container_name": loc.container,
        "endpoint": loc.endpoint,
        "protocol": protocol,
    }
    return DatastoreFS(f"{loc.account}/{loc.container}", "azure_blob", config, None), loc.path
