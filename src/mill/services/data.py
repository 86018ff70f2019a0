"""Data assets: named, versioned, typed pointers to files and folders on storage.

A local path is uploaded by the CLI to the default datastore first (under
``LocalUpload/<id>/``) and the asset then points there; a datastore, job output or cloud
path is kept as a pointer. Versions are immutable; ``@latest`` is the newest version that
is not archived.
"""

from __future__ import annotations

import time
import uuid
from pathlib import PurePosixPath
from typing import Any

from mill import specs
from mill.domain.entities import DataAsset
from mill.errors import MillError, NotFoundError, SpecError, UsageError
from mill.services import datastores
from mill.services.context import Context
from mill.services.formats import iso
from mill.storage.filesystems import PathStats

__all__ = [
    "archive",
    "create",
    "files",
    "job_output_uri",
    "list_assets",
    "new_upload",
    "require_kind",
    "resolve",
    "resolve_reference",
    "show",
    "update",
]

_MLTABLE_FILE = "MLTable"


def new_upload(ctx: Context, workspace: str, filename: str) -> dict[str, str]:
    """Where the CLI uploads a local file or folder before creating an asset from it."""
    name = PurePosixPath(filename.replace("\\", "/")).name
    if not name or name in (".", ".."):
        raise UsageError(f"cannot upload {filename!r}: it has no file or folder name")
    datastore = datastores.default_name(ctx, workspace)
    relative = f"LocalUpload/{uuid.uuid4().hex}/{name}"
    return {
        "datastore": datastore,
        "path": relative,
        "uri": f"azureml://datastores/{datastore}/paths/{relative}",
    }


def create(
    ctx: Context, workspace: str, body: dict[str, Any], *, validate_only: bool = False
) -> dict[str, Any]:
    """Register a version of a data asset (the next number when no version is given)."""
    source = body.pop("source", None) if isinstance(body, dict) else None
    spec = specs.parse_data_asset(body)
    if spec.is_local:
        raise SpecError.one(
            "a local path must be uploaded before the asset is created (the CLI does this)",
            field="path",
            value=spec.path,
            allowed="azureml://datastores/..., azureml://jobs/..., https://, wasbs://, "
            "abfss:// or s3://",
        )
    ctx.store.get_workspace(workspace)
    version = spec.version or _next_version(ctx, workspace, spec.name)
    existing = set(ctx.store.data_asset_versions(workspace, spec.name))
    if version in existing:
        raise SpecError.one(
            f"data asset {spec.name!r} version {version!r} already exists; versions are immutable",
            field="version",
            value=version,
            allowed="a new version, or leave version out to get the next one",
        )
    path = job_output_uri(ctx, workspace, spec.path)
    stats = _check_path(ctx, workspace, spec.type, path)
    asset = DataAsset(
        workspace=workspace,
        name=spec.name,
        version=version,
        type=spec.type,
        path=path,
        description=spec.description,
        tags=dict(spec.tags),
        properties=dict(spec.properties),
        size_bytes=stats.size_bytes,
        file_count=stats.file_count,
        source=_source(source, spec.path, path),
        created_at=time.time(),
    )
    if validate_only:
        return _read(asset)
    return _read(ctx.store.add_data_asset(asset))


def show(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None = None
) -> dict[str, Any]:
    return _read(resolve(ctx, workspace, name, version, label))


def list_assets(
    ctx: Context, workspace: str, name: str | None = None, include_archived: bool = False
) -> list[dict[str, Any]]:
    """Every version of ``name``, newest first; without a name, each asset's latest."""
    assets = ctx.store.list_data_assets(workspace, name, include_archived)
    if name is not None:
        if not assets and not list(ctx.store.data_asset_versions(workspace, name)):
            raise NotFoundError(f"data asset {name!r} not found in workspace {workspace!r}")
        return [_read(a) for a in reversed(assets)]
    latest: dict[str, DataAsset] = {}
    for asset in assets:  # oldest first, so the last one seen is the newest
        latest[asset.name] = asset
    return [_read(a) for a in sorted(latest.values(), key=lambda a: a.name)]


def resolve(
    ctx: Context, workspace: str, name: str, version: str | None, label: str | None = None
) -> DataAsset:
    """A version by number, or by label (only ``latest``, as Azure ML has for data)."""
    if version is not None:
        return ctx.store.get_data_asset(workspace, name, version)
    if label not in (None, "latest"):
        raise UsageError(
            f"unknown label {label!r} for data asset {name!r}",
            hint="data assets have the label 'latest'; give a version otherwise",
        )
    assets = ctx.store.list_data_assets(workspace, name)
    if not assets:
        archived = list(ctx.store.data_asset_versions(workspace, name))
        raise NotFoundError(
            f"data asset {name!r} has no version to use in workspace {workspace!r}"
            + (" (every version is archived)" if archived else ""),
            hint="create one with: mill data create --name " + name + " --path <path>",
        )
    return assets[-1]


def resolve_reference(ctx: Context, workspace: str, text: str) -> DataAsset:
    """``azureml:name:version``, ``azureml:name@latest`` or ``azureml:name`` (= latest)."""
    ref = specs.parse_asset_reference(text)
    if ref is None or ref.registry is not None:
        raise UsageError(
            f"{text!r} is not a data asset reference",
            hint="use azureml:<name>:<version> or azureml:<name>@latest",
        )
    return resolve(ctx, workspace, ref.name, ref.version, ref.label)


def update(
    ctx: Context, workspace: str, name: str, version: str, fields: dict[str, Any]
) -> dict[str, Any]:
    """Change description, tags or properties; the path and type of a version never change."""
    fixed = sorted(set(fields) - {"description", "tags", "properties", "name", "version"})
    if fixed:
        raise UsageError(
            f"cannot change {', '.join(fixed)} of data asset {name!r} version {version!r}; "
            "versions are immutable",
            hint="create a new version instead",
        )

    def change(asset: DataAsset) -> None:
        if "description" in fields:
            asset.description = fields["description"]
        if "tags" in fields:
            asset.tags = {str(k): str(v) for k, v in (fields["tags"] or {}).items()}
        if "properties" in fields:
            asset.properties = {str(k): str(v) for k, v in (fields["properties"] or {}).items()}

    return _read(ctx.store.update_data_asset(workspace, name, version, change))


def archive(
    ctx: Context, workspace: str, name: str, version: str | None, archived: bool = True
) -> list[dict[str, Any]]:
    """Archive (or restore) one version, or every version when none is given."""
    versions = (
        [version] if version is not None else list(ctx.store.data_asset_versions(workspace, name))
    )
    if not versions:
        raise NotFoundError(f"data asset {name!r} not found in workspace {workspace!r}")

    def change(asset: DataAsset) -> None:
        asset.archived = archived

    return [_read(ctx.store.update_data_asset(workspace, name, v, change)) for v in versions]


def files(ctx: Context, workspace: str, asset: DataAsset) -> dict[str, Any]:
    """The files of an asset version, for downloading: where they are and their sizes."""
    return {**datastores.list_files(ctx, workspace, asset.path), "type": asset.type}


def _next_version(ctx: Context, workspace: str, name: str) -> str:
    numbers = [int(v) for v in ctx.store.data_asset_versions(workspace, name) if v.isdigit()]
    return str(max(numbers, default=0) + 1)


def job_output_uri(ctx: Context, workspace: str, path: str) -> str:
    """``azureml://jobs/<job>/outputs/<output>[/paths/<p>]`` -> the output's datastore URI."""
    parsed = specs.references.parse_job_output_uri(path)
    if parsed is None:
        return path
    from mill.services.launch import ARTIFACTS, default_output_uri  # the jobs' path rules

    job_name, output, inner = parsed
    job = ctx.store.get_job(workspace, job_name)
    if output == ARTIFACTS:
        base = default_output_uri(job.name, ARTIFACTS)
    else:
        outputs = job.spec.get("outputs") or {}
        if output not in outputs:
            raise SpecError.one(
                f"job {job_name!r} has no output {output!r}",
                field="path",
                value=path,
                allowed=", ".join([ARTIFACTS, *outputs]),
            )
        base = outputs[output]["path"]
    if not inner:
        return base
    return base.rstrip("/") + "/" + inner.lstrip("/")


def require_kind(
    ctx: Context,
    workspace: str,
    path: str,
    type_: str,
    *,
    field: str = "path",
    type_field: str = "type",
) -> tuple[Any, str, PathStats]:
    """The storage behind ``path``, which must be a file (``uri_file``) or a folder (else)."""
    try:
        fs, relative = datastores.locate(ctx, workspace, path)
    except NotFoundError as exc:  # an unknown datastore
        raise SpecError.one(exc.message, field=field, value=path) from None
    stats = fs.stat(relative)
    wanted = "file" if type_ == "uri_file" else "folder"
    if stats.kind == "missing":
        raise SpecError.one(
            f"nothing found at {path} (datastore {fs.name!r})",
            field=field,
            value=path,
            allowed=f"an existing {wanted}",
        )
    if stats.kind != wanted:
        other = "uri_folder" if stats.kind == "folder" else "uri_file"
        raise SpecError.one(
            f"{path} is a {stats.kind}, but type {type_} needs a {wanted}",
            field=type_field,
            value=type_,
            allowed=f"{other} (or a path to a {wanted})",
        )
    return fs, relative, stats


def _check_path(ctx: Context, workspace: str, type_: str, path: str) -> PathStats:
    """The path exists, is a file or a folder as the type says; an mltable holds MLTable."""
    fs, relative, stats = require_kind(ctx, workspace, path, type_)
    if type_ == "mltable":
        _check_mltable(fs, relative, path)
    return stats


def _check_mltable(fs: Any, relative: str, path: str) -> None:
    table = f"{relative.rstrip('/')}/{_MLTABLE_FILE}" if relative else _MLTABLE_FILE
    try:
        with fs.open_read(table) as handle:
            text = handle.read(1_000_001)
    except MillError:
        text = None
    if text is None:
        raise SpecError.one(
            f"an mltable folder must hold a file named {_MLTABLE_FILE}",
            field="path",
            value=path,
            allowed="a folder with an MLTable file",
        )
    specs.parse_mltable_text(text.decode("utf-8", errors="replace"), f"{path.rstrip('/')}/MLTable")


def _source(given: Any, original: str, resolved: str) -> dict[str, Any]:
    if isinstance(given, dict) and given.get("kind") == "local_upload":
        return {"kind": "local_upload", "local_path": str(given.get("local_path", ""))[:4096]}
    if isinstance(given, dict) and given.get("kind") == "job_output":
        return {"kind": "job_output", "job": given.get("job"), "output": given.get("output")}
    if original.startswith("azureml://jobs/"):
        return {"kind": "job_output", "uri": original}
    return {"kind": "pointer"}


def _read(asset: DataAsset) -> dict[str, Any]:
    """As ``az ml data show`` prints it, plus size, file count and the storage path."""
    parsed = specs.parse_datastore_uri(asset.path)
    return {
        "name": asset.name,
        "version": asset.version,
        "type": asset.type,
        "path": asset.path,
        "datastore": parsed[0] if parsed else None,
        "datastore_path": parsed[1] if parsed else None,
        "description": asset.description,
        "tags": asset.tags,
        "properties": asset.properties,
        "size_bytes": asset.size_bytes,
        "file_count": asset.file_count,
        "source": asset.source,
        "archived": asset.archived,
        "creation_context": {"created_at": iso(asset.created_at)},
        "id": f"azureml:{asset.name}:{asset.version}",
    }
