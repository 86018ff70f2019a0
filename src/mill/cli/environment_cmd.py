"""mill environment create|show|list|update|archive|restore|validate|build|prune"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["environment"]

F = TypeVar("F", bound=Callable[..., Any])

_COLUMNS = (
    ("Name", "name"),
    ("Version", "version"),
    ("Image", "image"),
    ("Description", "description"),
)
_CACHE_COLUMNS = (
    ("Key", "key"),
    ("Python", "python_version"),
    ("Packages", "requirement_count"),
    ("SizeMB", "size_mb"),
    ("LastUsed", "last_used"),
    ("Source", "source"),
)
_CURATED_COLUMNS = (
    ("Name", "name"),
    ("Packages", "length(requirements)"),
    ("Description", "description"),
)


@click.group()
def environment() -> None:
    """Environments: built into cached virtualenvs keyed by their content."""


def _definition(
    *,
    file_: str | None,
    name: str | None,
    version: str | None,
    image: str | None,
    conda_file: str | None,
    build_context: str | None,
    dockerfile_path: str | None,
    description: str | None,
    overrides: tuple[str, ...],
) -> dict[str, Any]:
    """An environment from a YAML file and/or flags, as the user wrote it (paths absolute)."""
    from mill import specs
    from mill.errors import UsageError

    body: dict[str, Any] = specs.load_environment(Path(file_), overrides) if file_ else {}
    if image:
        body["image"] = image
    if conda_file:
        body["conda_file"] = str(Path(conda_file).resolve())
    if build_context:
        body["build"] = {"path": str(Path(build_context).resolve())}
        if dockerfile_path:
            body["build"]["dockerfile_path"] = dockerfile_path
    for key, value in (("name", name), ("version", version), ("description", description)):
        if value is not None:
            body[key] = value
    if not body.get("name"):
        raise UsageError("an environment needs a name: give --name or name: in the file")
    if not file_:  # flags only: validate the same way a file is
        specs.parse_command_job(
            {
                "command": "true",
                "environment": {k: v for k, v in body.items() if k not in ("name", "version")},
            },
            base_dir=Path.cwd(),
        )
    return body


def _create_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "-f", "--file", "file_", type=click.Path(dir_okay=False), help="Environment YAML."
            ),
            click.option("-n", "--name", default=None),
            click.option("-v", "--version", default=None, help="Default: the next version."),
            click.option("-i", "--image", default=None, help="Base image, e.g. python:3.11."),
            click.option("-c", "--conda-file", default=None, type=click.Path(dir_okay=False)),
            click.option("-b", "--build-context", default=None, type=click.Path(file_okay=False)),
            click.option("--dockerfile-path", default=None),
            click.option("--description", default=None),
            click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE"),
        ]
    ):
        func = option(func)
    return func


@environment.command("create")
@_create_options
@workspace_option
@output_options
def create_cmd(workspace: str, output: str | None, query: str | None, **fields: Any) -> None:
    """Register a new version of an environment."""
    from mill.client.uploads import portable_environment

    body = _definition(**fields)
    client = connect(workspace)
    emit(client.create_environment(portable_environment(client, body)), output, query)


@environment.command("validate")
@_create_options
@workspace_option
def validate_cmd(workspace: str, **fields: Any) -> None:
    """Check an environment file (conda file, build context, pins) without registering it."""
    _definition(**{**fields, "name": fields["name"] or "validate"})
    click.echo("The environment is valid.", err=True)


@environment.command("show")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None, help="latest")
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
    """Show an environment version, with its key (the content hash it is cached under)."""
    emit(connect(workspace).show_environment(name, version, label), output, query)


@environment.command("list")
@click.option("-n", "--name", default=None, help="All versions of this environment.")
@click.option("--registry", "registry", default=None, help="azureml: the curated environments.")
@click.option("--cached", is_flag=True, help="The built environments in the cache.")
@click.option("--include-archived", is_flag=True)
@workspace_option
@output_options
def list_cmd(
    name: str | None,
    registry: str | None,
    cached: bool,
    include_archived: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """List environments (latest version of each), curated ones, or the build cache."""
    from mill.errors import UsageError

    client = connect(workspace)
    if registry is not None:
        if registry.lower() != "azureml":
            raise UsageError(
                f"unknown registry {registry!r}; Mill ships the curated registry 'azureml'"
            )
        emit(
            client.curated_environments(), output, query, columns=_CURATED_COLUMNS, default="table"
        )
    elif cached:
        emit(client.cached_environments(), output, query, columns=_CACHE_COLUMNS, default="table")
    else:
        emit(
            client.list_environments(name, include_archived),
            output,
            query,
            columns=_COLUMNS,
            default="table",
        )


@environment.command("update")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", required=True)
@click.option("--description", default=None)
@click.option("--tags", multiple=True, help="key=value (replaces the tags).")
@workspace_option
@output_options
def update_cmd(
    name: str,
    version: str,
    description: str | None,
    tags: tuple[str, ...],
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Change an environment version's description or tags."""
    from mill.cli.parsing import key_values

    body: dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if tags:
        body["tags"] = key_values(tags, "--tags")
    emit(connect(workspace).update_environment(name, version, body), output, query)


@environment.command("archive")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None, help="Default: every version.")
@workspace_option
def archive_cmd(name: str, version: str | None, workspace: str) -> None:
    """Hide an environment (or one version) from lists and @latest."""
    connect(workspace).environment_action(name, "archive", version=version)
    click.echo(
        f"Archived environment {name!r}" + (f" version {version}" if version else ""), err=True
    )


@environment.command("restore")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@workspace_option
def restore_cmd(name: str, version: str | None, workspace: str) -> None:
    """Bring an archived environment back."""
    connect(workspace).environment_action(name, "restore", version=version)
    click.echo(f"Restored environment {name!r}", err=True)


@environment.command("build")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None)
@click.option(
    "--builder",
    type=click.Choice(["uv", "docker"]),
    default="uv",
    show_default=True,
    help="docker: build a real image from the same spec (needs a container engine).",
)
@workspace_option
@output_options
def build_cmd(
    name: str,
    version: str | None,
    label: str | None,
    builder: str,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Build an environment now (or find it cached), so jobs using it start at once."""
    click.echo(f"Building environment {name!r} (the first build downloads packages)...", err=True)
    result = connect(workspace).environment_action(
        name, "build", version=version, label=label, builder=builder
    )
    for line in result.pop("log", []):
        click.echo(line, err=True)
    emit(result, output, query)


@environment.command("prune")
@click.option(
    "--older-than", default=None, help="Remove environments unused for this long: 7d, 12h, 30m."
)
@click.option(
    "--keep", type=click.IntRange(min=0), default=None, help="Keep only the N most recently used."
)
@output_options
def prune_cmd(
    older_than: str | None, keep: int | None, output: str | None, query: str | None
) -> None:
    """Free space in the environment cache."""
    body = {"older_than": older_than, "keep": keep}
    result = connect().prune_environments({k: v for k, v in body.items() if v is not None})
    click.echo(f"Removed {len(result['removed'])} environment(s).", err=True)
    emit(result, output, query)
