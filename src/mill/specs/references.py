"""The reference forms of Azure ML YAML (yaml-reference §4): assets, datastores, paths, compute."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "AssetReference",
    "classify_path",
    "looks_like_placeholder",
    "normalize_compute",
    "parse_asset_reference",
    "parse_datastore_uri",
    "parse_job_output_uri",
    "strip_file_prefix",
]

_WORKSPACE_PREFIX = r"(?:subscriptions/[^/]+/resource[gG]roups/[^/]+/workspaces/[^/]+/)?"
_DATASTORE_URI = re.compile(rf"^azureml://{_WORKSPACE_PREFIX}datastores/([^/]+)/paths/(.*)$")
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_VERSIONED = re.compile(rf"^azureml:({_NAME}):([^:@/\s]+)$")
_LABELLED = re.compile(rf"^azureml:({_NAME})@([^:@/\s]+)$")
_BARE = re.compile(rf"^azureml:({_NAME})$")
_REGISTRY = re.compile(
    rf"^azureml://registries/([^/\s]+)/([a-z_]+)/({_NAME})"
    r"(?:/versions/([^/\s]+)|/labels/([^/\s]+))?/?$"
)
_SNAPSHOT = re.compile(r"^snapshot:[0-9a-f]{64}$")
_JOB_OUTPUT = re.compile(r"^azureml://jobs/([^/]+)/outputs/([^/]+)(?:/paths/(.*))?$")
_CLOUD_SCHEMES = ("wasbs", "wasb", "abfss", "abfs", "adl", "s3", "gs", "gcs")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_PLACEHOLDER = re.compile(r"^\s*<[^<>]*>\s*$|^\s*\{\{.*\}\}\s*$")


@dataclass(frozen=True)
class AssetReference:
    """A reference to a versioned asset in a workspace or a registry.

    ``kind`` is the registry path segment (``environments``, ``models``, ``components``...)
    and is ``None`` for workspace references, whose kind comes from where they are used.
    At most one of ``version`` and ``label`` is set; neither means "no version given".
    """

    name: str
    version: str | None = None
    label: str | None = None
    registry: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        if self.registry is not None:
            text = f"azureml://registries/{self.registry}/{self.kind}/{self.name}"
            if self.version is not None:
                return f"{text}/versions/{self.version}"
            return f"{text}/labels/{self.label}" if self.label is not None else text
        if self.version is not None:
            return f"azureml:{self.name}:{self.version}"
        return (
            f"azureml:{self.name}@{self.label}"
            if self.label is not None
            else f"azureml:{self.name}"
        )


def parse_datastore_uri(uri: str) -> tuple[str, str] | None:
    """``azureml://datastores/<ds>/paths/<p>`` -> ``(ds, p)``; anything else -> ``None``.

    The long form with ``subscriptions/.../workspaces/<ws>/`` before ``datastores`` is
    accepted too.
    """
    match = _DATASTORE_URI.match(uri.strip())
    return (match.group(1), match.group(2)) if match else None


def parse_job_output_uri(uri: str) -> tuple[str, str, str] | None:
    """``azureml://jobs/<job>/outputs/<out>[/paths/<p>]`` -> ``(job, out, p)``; else None."""
    match = _JOB_OUTPUT.match(uri.strip())
    return (match.group(1), match.group(2), match.group(3) or "") if match else None


def parse_asset_reference(text: str) -> AssetReference | None:
    """Parse ``azureml:name:version``, ``azureml:name@label``, ``azureml:name``, registry URIs."""
    text = text.strip()
    if match := _VERSIONED.match(text):
        return AssetReference(name=match.group(1), version=match.group(2))
    if match := _LABELLED.match(text):
        return AssetReference(name=match.group(1), label=match.group(2))
    if match := _BARE.match(text):
        return AssetReference(name=match.group(1))
    if match := _REGISTRY.match(text):
        registry, kind, name, version, label = match.groups()
        return AssetReference(name=name, version=version, label=label, registry=registry, kind=kind)
    return None


def normalize_compute(value: str | None) -> str | None:
    """``azureml:cpu-cluster`` -> ``cpu-cluster``; ``azureml:serverless`` -> ``serverless``."""
    if value is None:
        return None
    value = value.strip()
    return value[len("azureml:") :] if value.startswith("azureml:") else value


def classify_path(value: str) -> str:
    """Say what kind of location a data/code path is.

    ``snapshot`` (``snapshot:<sha256>``, files already uploaded to the workspace),
    ``datastore`` (azureml://datastores/...), ``job_output`` (azureml://jobs/...), ``asset``
    (any other ``azureml:`` reference), ``http`` (http/https), ``cloud`` (wasbs, abfss, s3, gs
    and any other ``scheme://`` URI) or ``local`` (a filesystem path, with or without a
    ``file:`` prefix).
    """
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("file:"):
        return "local"
    if _SNAPSHOT.match(text):
        return "snapshot"
    if parse_datastore_uri(text) is not None or lowered.startswith("azureml://datastores/"):
        return "datastore"
    if lowered.startswith("azureml://jobs/"):
        return "job_output"
    if lowered.startswith("azureml:"):
        return "asset"
    if lowered.startswith(("http://", "https://")):
        return "http"
    match = _SCHEME.match(text)
    if match and (match.group(1).lower() in _CLOUD_SCHEMES or len(match.group(1)) > 1):
        return "cloud"
    return "local"


def strip_file_prefix(value: str) -> str:
    """The filesystem path of a local reference: ``file:./data`` -> ``./data``."""
    if value.startswith("file://"):
        return value[len("file://") :]
    if value.startswith("file:"):
        return value[len("file:") :]
    return value


def looks_like_placeholder(value: str) -> bool:
    """``< your compute name >``, ``<VERSION>`` or ``{{NAME}}``: text a user must replace."""
    return bool(_PLACEHOLDER.match(value))
