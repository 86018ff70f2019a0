"""mill compute create|show|list|delete"""

from __future__ import annotations

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["compute"]

_COLUMNS = (
    ("Name", "name"),
    ("Type", "type"),
    ("MaxInstances", "max_instances"),
    ("State", "provisioning_state"),
)


@click.group()
def compute() -> None:
    """Compute targets: `local` always exists; name more with their own concurrency."""


@compute.command("create")
@click.option("-n", "--name", required=True)
@click.option("--type", "type_", default="local", show_default=True)
@click.option(
    "--max-instances",
    type=int,
    default=1,
    show_default=True,
    help="How many job instances run at once on this compute.",
)
@click.option("--description", default=None)
@workspace_option
@output_options
def create_cmd(
    name: str,
    type_: str,
    max_instances: int,
    description: str | None,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Create a named compute."""
    body = {"name": name, "type": type_, "max_instances": max_instances, "description": description}
    emit(connect(workspace).create_compute(body), output, query)


@compute.command("show")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def show_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """Show a compute."""
    emit(connect(workspace).show_compute(name), output, query)


@compute.command("list")
@workspace_option
@output_options
def list_cmd(workspace: str, output: str | None, query: str | None) -> None:
    """List computes."""
    emit(connect(workspace).list_computes(), output, query, columns=_COLUMNS, default="table")


@compute.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-y", "--yes", is_flag=True)
@workspace_option
def delete_cmd(name: str, yes: bool, workspace: str) -> None:
    """Delete a compute."""
    if not yes:
        click.confirm(f"Delete compute {name!r}?", abort=True)
    connect(workspace).delete_compute(name)
    click.echo(f"Deleted compute {name!r}.", err=True)
