"""mill experiment list|show|archive|restore"""

from __future__ import annotations

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["experiment"]

_COLUMNS = (("Name", "name"), ("Id", "experiment_id"), ("Stage", "lifecycle_stage"),
            ("Created", "creation_context.created_at"))  # fmt: skip


@click.group()
def experiment() -> None:
    """Experiments: the groups jobs run in (MLflow experiments)."""


@experiment.command("list")
@click.option("--include-archived", is_flag=True)
@workspace_option
@output_options
def list_cmd(include_archived: bool, workspace: str, output: str | None, query: str | None) -> None:
    """List experiments."""
    emit(connect(workspace).list_experiments(include_archived), output, query, columns=_COLUMNS,
         default="table")  # fmt: skip


@experiment.command("show")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def show_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """Show an experiment and its recent jobs."""
    emit(connect(workspace).show_experiment(name), output, query)


@experiment.command("archive")
@click.option("-n", "--name", required=True)
@workspace_option
def archive_cmd(name: str, workspace: str) -> None:
    """Archive an experiment (MLflow's delete; `restore` brings it back)."""
    connect(workspace).experiment_action(name, "archive")
    click.echo(f"Archived experiment {name!r}.", err=True)


@experiment.command("restore")
@click.option("-n", "--name", required=True)
@workspace_option
def restore_cmd(name: str, workspace: str) -> None:
    """Restore an archived experiment."""
    connect(workspace).experiment_action(name, "restore")
    click.echo(f"Restored experiment {name!r}.", err=True)
