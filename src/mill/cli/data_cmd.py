"""mill data create|show|list|update|archive|restore|download|validate"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mill.cli.assets import add_archive_commands, download_files
from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit
from mill.cli.parsing import key_values

__all__ = ["data"]

F = TypeVar("F", bound=Callable[..., Any])

_COLUMNS = (
    ("Name", "name"),
    ("Version", "version"),
    ("Type", "type"),
    ("Files", "file_count"),
    ("Bytes", "size_bytes"),
    ("Path", "path"),
)


@click.group()
def data() -> None:
    """Data assets: named, versioned files and folders on a datastore or any storage URI."""


def _spec_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "-f", "--file", "file_", type=click.Path(dir_okay=False), help="Data YAML."
            ),
            click.option("-n", "--name", default=None),
            click.option("-v", "--version", default=None, help="Default: the next version."),
            click.option(
                "-t",
                "--type",
                "type_",
                type=click.Choice(["uri_file", "uri_folder", "mltable"]),
                default=None,
            ),
            click.option("-p", "--path", default=None, help="Local path or storage URI."),
            click.option("-d", "--description", default=None),
            click.option("--tags", multiple=True, metavar="KEY=VALUE"),
            click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE"),
        ]
    ):
        func = option(func)
    return func


def _body(
    file_: str | None,
    name: str | None,
    version: str | None,
    type_: str | None,
    path: str | None,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
) -> dict[str, Any]:
    """The asset as the file and flags give it; local paths absolute and checked here."""
    from mill import specs

    body: dict[str, Any] = {}
    if file_:
        spec = specs.load_data_asset(Path(file_), overrides)
        body = spec.model_dump(mode="json", exclude_none=True, exclude={"schema_"})
    for key, value in (
        ("name", name),
        ("version", version),
        ("type", type_),
        ("description", description),
    ):
        if value is not None:
            body[key] = value
    if path is not None:
        body["path"] = path
    if tags:
        body["tags"] = {**body.get("tags", {}), **key_values(tags, "--tags")}
    spec = specs.parse_data_asset(body)
    if spec.is_local:
        local = Path(specs.references.strip_file_prefix(spec.path)).expanduser().resolve()
        _check_local(local, spec.type)
        body["path"] = str(local)
    return body


def _check_local(local: Path, type_: str) -> None:
    from mill.errors import SpecError

    if not local.exists():
        raise SpecError.one("no such file or folder", field="path", value=str(local))
    if type_ == "uri_file" and not local.is_file():
        raise SpecError.one(
            "type uri_file needs a file", field="type", value=type_, allowed="uri_folder"
        )
    if type_ in ("uri_folder", "mltable") and not local.is_dir():
        raise SpecError.one(
            f"type {type_} needs a folder", field="type", value=type_, allowed="uri_file"
        )
    if type_ == "mltable":
        from mill.data import validate_mltable

        validate_mltable(local)


@data.command("create")
@_spec_options
@workspace_option
@output_options
def create_cmd(workspace: str, output: str | None, query: str | None, **fields: Any) -> None:
    """Register a new version; a local path is uploaded to the default datastore first."""
    from mill import specs
    from mill.cli.progress import transfer_progress
    from mill.client.transfer import local_files, upload_path
    from mill.errors import ConflictError, NotFoundError

    body = _body(**fields)
    client = connect(workspace)
    if specs.classify_path(body["path"]) == "local":
        local = Path(body["path"])
        if body.get("version"):  # fail before uploading anything
            try:
                client.show_data(body["name"], body["version"], None)
            except NotFoundError:
                pass
            else:
                raise ConflictError(
                    f"data asset {body['name']!r} version {body['version']!r} already exists; "
                    "versions are immutable",
                    hint="leave --version out to get the next one",
                )
        target = client.new_data_upload(local.name)
        total = sum(size for _, _, size in local_files(local))
        with transfer_progress(f"Uploading {local.name}", total) as advance:
            upload_path(client, local, target["uri"], advance)
        body["path"] = target["uri"] + ("" if local.is_file() else "/")
        body["source"] = {"kind": "local_upload", "local_path": str(local)}
    emit(client.create_data(body), output, query)


@data.command("validate")
@_spec_options
@workspace_option
@output_options
def validate_cmd(workspace: str, output: str | None, query: str | None, **fields: Any) -> None:
    """Check a data asset definition (and its path) without registering anything."""
    from mill import specs

    body = _body(**fields)
    if specs.classify_path(body["path"]) == "local":
        emit({"valid": True, "name": body.get("name"), "path": body["path"]}, output, query)
        return
    result = connect(workspace).create_data(body, validate_only=True)
    emit({"valid": True, **result}, output, query)


@data.command("show")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None, help="latest: the newest version.")
@workspace_option
@output_options
def show_cmd(
    name: str,
    version: str | None,
    label: str | None,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """One version (default: the latest), with its size, file count and datastore path."""
    emit(connect(workspace).show_data(name, version, label), output, query)


@data.command("list")
@click.option("-n", "--name", default=None, help="List this asset's versions.")
@click.option("--include-archived", is_flag=True)
@workspace_option
@output_options
def list_cmd(
    name: str | None, include_archived: bool, workspace: str, output: str | None, query: str | None
) -> None:
    """Each asset's latest version, or every version of --name."""
    emit(connect(workspace).list_data(name, include_archived), output, query, columns=_COLUMNS)


@data.command("update")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", required=True)
@click.option("-d", "--description", default=None)
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="Replaces the tags.")
@click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE")
@workspace_option
@output_options
def update_cmd(
    name: str,
    version: str,
    description: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Change a version's description, tags or properties (its path and type stay)."""
    from mill import specs

    body: dict[str, Any] = specs.apply_overrides({}, overrides) if overrides else {}
    if description is not None:
        body["description"] = description
    if tags:
        body["tags"] = key_values(tags, "--tags")
    emit(connect(workspace).update_data(name, version, body), output, query)


add_archive_commands(
    data,
    "data asset",
    lambda client, name, version, restore: client.archive_data(name, version, restore),
)


@data.command("download")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None)
@click.option(
    "-p",
    "--download-path",
    default=".",
    type=click.Path(file_okay=False),
    help="Files land in <download-path>/<name>/.",
)
@workspace_option
def download_cmd(
    name: str, version: str | None, label: str | None, download_path: str, workspace: str
) -> None:
    """Download a version's files."""
    client = connect(workspace)
    listing = client.data_files(name, version, label)
    download_files(client, name, listing["uri"], listing, download_path)
