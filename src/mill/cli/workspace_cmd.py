"""mill workspace create|show|list|delete"""

from __future__ import annotations

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["workspace"]

_COLUMNS = (("Name", "name"), ("Description", "description"), ("StorageRoot", "storage_root"))


@click.group()
def workspace() -> None:
    """Workspaces: each has its own jobs, computes, datastores and storage."""


@workspace.command("create")
@click.option("-n", "--name", required=True)
@click.option("--description", default=None)
@click.option("--tags", multiple=True, help="key=value; repeat for more.")
@output_options
def create_cmd(
    name: str, description: str | None, tags: tuple[str, ...], output: str | None, query: str | None
) -> None:
    """Create a workspace."""
    from mill.cli.parsing import key_values

    body = {"name": name, "description": description, "tags": key_values(tags, "--tags")}
    emit(connect().create_workspace(body), output, query)


@workspace.command("show")
@click.option("-n", "--name", default=None, help="Default: the current workspace (-w).")
@workspace_option
@output_options
def show_cmd(name: str | None, workspace: str, output: str | None, query: str | None) -> None:
    """Show a workspace, with its storage root."""
    emit(connect().show_workspace(name or workspace), output, query)


@workspace.command("list")
@output_options
def list_cmd(output: str | None, query: str | None) -> None:
    """List workspaces."""
    emit(connect().list_workspaces(), output, query, columns=_COLUMNS, default="table")


@workspace.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_cmd(name: str, yes: bool) -> None:
    """Delete a workspace with its jobs and its storage."""
    if not yes:
        click.confirm(f"Delete workspace {name!r} with all its jobs and files?", abort=True)
    connect().delete_workspace(name)
    click.echo(f"Deleted workspace {name!r}.", err=True)
