"""Options every command shares, and the connection to the control plane."""

from __future__ import annotations

import fcntl
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mill.cli.output import FORMATS

__all__ = ["connect", "output_options", "settings", "workspace_option"]

F = TypeVar("F", bound=Callable[..., Any])


def settings() -> Any:
    from mill.config import Settings

    return Settings.from_env()


def workspace_option(func: F) -> F:
    return click.option(
        "-w",
        "--workspace-name",
        "workspace",
        envvar="MILL_WORKSPACE",
        default="default",
        show_default=True,
        help="Workspace to use (also MILL_WORKSPACE).",
    )(func)


def output_options(func: F) -> F:
    func = click.option("--query", help="JMESPath query applied to the result.")(func)
    func = click.option(
        "-o", "--output", type=click.Choice(FORMATS), default=None, help="Output format."
    )(func)
    return func


def connect(workspace: str = "default") -> Any:
    """A client for this home's server; starts it in the background when it is the local default."""
    from mill.client.http import MillClient
    from mill.server import process

    s = settings()
    if s.url:
        return MillClient(s.url, s.token, workspace, same_host_transfers=s.same_host_transfers)
    info = process.find_running(s)
    if info is None:
        s.home.mkdir(parents=True, exist_ok=True)
        with (s.home / "start.lock").open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two CLIs starting at once start one server
            info = process.find_running(s)
            if info is None:
                port = s.port if _port_free(s.host, s.port) else 0
                info = process.start_background(s, s.host, port, s.token)
                click.echo(
                    f"Started the Mill control plane at {info['url']} (pid {info['pid']}; "
                    f"log: {s.server_log}). Stop it with: mill server stop",
                    err=True,
                )
    return MillClient(info["url"], s.token, workspace, same_host_transfers=s.same_host_transfers)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
