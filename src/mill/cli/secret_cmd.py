"""mill secret set|show|list|delete: the workspace vault. Values go in, never come out."""

from __future__ import annotations

import sys

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["secret"]

_COLUMNS = (
    ("Name", "name"),
    ("Version", "version"),
    ("ManagedBy", "managed_by"),
    ("Updated", "creation_context.last_modified_at"),
    ("Description", "description"),
)


@click.group()
def secret() -> None:
    """Secrets: sealed at rest, shown as metadata only. Jobs use them by reference:
    environment_variables: {DB_PASSWORD: "${{secrets.db-password}}"}."""


@secret.command("set")
@click.option("-n", "--name", required=True)
@click.option(
    "-f",
    "--file",
    "file_",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Read the value from this file (one trailing newline is dropped).",
)
@click.option(
    "--value",
    default=None,
    help="The value itself, for scripts. It lands in your shell history and the process "
    "list: prefer --file, a pipe, or the prompt.",
)
@click.option("--description", default=None)
@workspace_option
@output_options
def set_cmd(
    name: str,
    file_: str | None,
    value: str | None,
    description: str | None,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Create a secret or replace its value (its version goes up).

    The value comes from --file, else from stdin when it is piped (one trailing newline is
    dropped), else from a hidden prompt.
    """
    from mill.errors import UsageError

    if file_ is not None and value is not None:
        raise UsageError("give the value one way: --file or --value, not both")
    if value is None:
        value = _read_value(file_)
    if not value:
        raise UsageError("a secret's value cannot be empty")
    from mill.client import secrets

    emit(secrets.set_secret(connect(workspace), name, value, description), output, query)


def _read_value(file_: str | None) -> str:
    from mill.errors import UsageError

    if file_ is not None:
        try:
            with open(file_, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise UsageError(f"cannot read --file {file_}: {exc.strerror or exc}") from exc
        return _one_line_end_dropped(_text(data, f"--file {file_}"))
    if not sys.stdin.isatty():
        return _one_line_end_dropped(_text(sys.stdin.buffer.read(), "stdin"))
    return str(click.prompt("Value", hide_input=True, confirmation_prompt=True, err=True))


def _text(data: bytes, source: str) -> str:
    from mill.errors import UsageError

    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"the value from {source} is not UTF-8 text") from None


def _one_line_end_dropped(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith("\n") else text


@secret.command("show")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def show_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """Show a secret's metadata (never its value)."""
    from mill.client import secrets

    emit(secrets.show_secret(connect(workspace), name), output, query)


@secret.command("list")
@workspace_option
@output_options
def list_cmd(workspace: str, output: str | None, query: str | None) -> None:
    """List the workspace's secrets (names and metadata)."""
    from mill.client import secrets

    emit(secrets.list_secrets(connect(workspace)), output, query, columns=_COLUMNS, default="table")


@secret.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Delete it even if something manages it.")
@workspace_option
def delete_cmd(name: str, yes: bool, force: bool, workspace: str) -> None:
    """Delete a secret. Jobs that refer to it fail to submit (or to start) afterwards."""
    if not yes:
        click.confirm(f"Delete secret {name!r}?", abort=True, err=True)
    from mill.client import secrets

    secrets.delete_secret(connect(workspace), name, force=force)
    click.echo(f"Deleted secret {name!r}.", err=True)
