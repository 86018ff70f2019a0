"""mill datastore create|show|list|update|delete"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["datastore"]

_COLUMNS = (
    ("Name", "name"),
    ("Type", "type"),
    ("Default", "is_default"),
    ("Location", "account_name || bucket || path"),
    ("Container", "container_name || filesystem"),
    ("Credentials", "credentials.type"),
)


@click.group()
def datastore() -> None:
    """Datastores: named storage (local, Azure Blob, ADLS Gen2, S3); secrets in the vault."""


def _spec(file_: str, name: str | None, overrides: tuple[str, ...]) -> dict[str, Any]:
    from mill import specs

    spec = specs.load_datastore(Path(file_), overrides)
    if name is not None:
        spec.name = name
    return spec.model_dump(mode="json", exclude_none=True, exclude={"schema_"}, by_alias=False)


@datastore.command("create")
@click.option("-f", "--file", "file_", required=True, type=click.Path(dir_okay=False))
@click.option("-n", "--name", default=None, help="Overrides the file's name.")
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@click.option("--set-default", is_flag=True, help="Make it the workspace's default datastore.")
@workspace_option
@output_options
def create_cmd(
    file_: str,
    name: str | None,
    overrides: tuple[str, ...],
    set_default: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Register a datastore; its storage must answer to the credentials given."""
    body = _spec(file_, name, overrides)
    emit(connect(workspace).create_datastore(body, set_default), output, query)


@datastore.command("update")
@click.option("-f", "--file", "file_", default=None, type=click.Path(dir_okay=False))
@click.option("-n", "--name", default=None)
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE")
@click.option("--set-default", is_flag=True, help="Make it the workspace's default datastore.")
@workspace_option
@output_options
def update_cmd(
    file_: str | None,
    name: str | None,
    overrides: tuple[str, ...],
    set_default: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Change a datastore from its YAML file, and/or make it the default (--set-default)."""
    from mill.errors import UsageError

    client = connect(workspace)
    if file_ is None and not set_default:
        raise UsageError("give -f FILE with the new definition, or --set-default")
    result: dict[str, Any] | None = None
    if file_ is not None:
        body = _spec(file_, name, overrides)
        name = body["name"]
        result = client.update_datastore(body["name"], body)
    if set_default:
        if name is None:
            raise UsageError("--set-default needs --name (or -f with a name)")
        result = client.set_default_datastore(name)
    emit(result, output, query)


@datastore.command("show")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def show_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """A datastore's fields; credentials by form and secret name, never by value."""
    emit(connect(workspace).show_datastore(name), output, query)


@datastore.command("list")
@workspace_option
@output_options
def list_cmd(workspace: str, output: str | None, query: str | None) -> None:
    """The workspace's datastores."""
    emit(connect(workspace).list_datastores(), output, query, columns=_COLUMNS)


@datastore.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@workspace_option
def delete_cmd(name: str, yes: bool, workspace: str) -> None:
    """Forget a datastore and the secrets it owns (its files stay where they are)."""
    if not yes:
        click.confirm(f"Delete datastore {name!r}?", abort=True)
    connect(workspace).delete_datastore(name)
    click.echo(f"Deleted datastore {name}.", err=True)
