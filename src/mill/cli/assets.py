"""Commands shared by the versioned asset nouns (data, model): archive/restore, download."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from mill.cli.common import connect, workspace_option

__all__ = ["add_archive_commands", "download_files"]

# (client, name, version or None, restore) -> the versions changed
Archive = Callable[[Any, str, "str | None", bool], list[dict[str, Any]]]


def add_archive_commands(group: click.Group, noun: str, archive: Archive) -> None:
    """``archive`` and ``restore`` for one noun: a version, or every version."""

    def run(name: str, version: str | None, workspace: str, restore: bool) -> None:
        done = archive(connect(workspace), name, version, restore)
        what = "Restored" if restore else "Archived"
        versions = ", ".join(d["version"] for d in done)
        click.echo(f"{what} {noun} {name} version(s) {versions}.", err=True)

    for verb, restore, text in (
        ("archive", False, f"Hide a {noun} version (or all) from lists and latest."),
        ("restore", True, "Bring back archived versions."),
    ):

        def command(
            name: str, version: str | None, workspace: str, _restore: bool = restore
        ) -> None:
            run(name, version, workspace, _restore)

        command.__doc__ = text
        command = workspace_option(command)
        command = click.option("-v", "--version", default=None, help="Default: every version.")(
            command
        )
        command = click.option("-n", "--name", required=True)(command)
        group.command(verb)(command)


def download_files(
    client: Any, name: str, uri: str, listing: dict[str, Any], download_path: str
) -> None:
    """Download a version's files into ``<download_path>/<name>/``, with a progress bar."""
    from mill.cli.progress import transfer_progress
    from mill.client.transfer import download_uri

    target = Path(download_path) / name
    total = sum(int(f["size"]) for f in listing["files"])
    with transfer_progress(f"Downloading {name}", total) as advance:
        count, size = download_uri(client, uri, target, listing, advance)
    click.echo(f"Downloaded {count} file(s), {size} bytes, to {target}", err=True)
