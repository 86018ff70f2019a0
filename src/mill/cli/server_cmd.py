"""mill server start|stop|status|run"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mill.cli.common import output_options, settings
from mill.cli.output import emit
from mill.config import DEFAULT_HOST

__all__ = ["server"]

F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def server() -> None:
    """Run the control plane (it also starts on demand for the local default)."""


def _net_options(func: F) -> F:
    func = click.option(
        "--token",
        envvar="MILL_TOKEN",
        default=None,
        help="Bearer token clients must send (also MILL_TOKEN); required off loopback.",
    )(func)
    func = click.option(
        "--port",
        type=int,
        default=None,
        help="Port to listen on (default 7878 or MILL_PORT); 0 picks a free one.",
    )(func)
    func = click.option(
        "--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on."
    )(func)
    return func


@server.command("run")
@_net_options
@click.option("--log-to-file", is_flag=True, hidden=True)
def run_cmd(host: str, port: int | None, token: str | None, log_to_file: bool) -> None:
    """Run the control plane in the foreground."""
    from mill.server.process import serve

    s = settings()
    serve(s, host, s.port if port is None else port, token, to_file=log_to_file)


@server.command("start")
@_net_options
@output_options
def start_cmd(
    host: str, port: int | None, token: str | None, output: str | None, query: str | None
) -> None:
    """Start the control plane in the background."""
    from mill.server.process import start_background

    s = settings()
    info = start_background(s, host, s.port if port is None else port, token)
    emit(_public(info), output, query)


@server.command("stop")
def stop_cmd() -> None:
    """Stop the control plane; running jobs keep running and are re-adopted on the next start."""
    from mill.server.process import stop

    info = stop(settings())
    click.echo(
        "Stopped the Mill server." if info else "No Mill server was running for this home.",
        err=True,
    )


@server.command("status")
@output_options
def status_cmd(output: str | None, query: str | None) -> None:
    """Whether this home's control plane is running, and where."""
    from mill.server.process import find_running

    s = settings()
    info = find_running(s)
    data = {"running": bool(info), "home": str(s.home), **(_public(info) if info else {})}
    emit(data, output, query)
    if not info:
        raise SystemExit(3)


def _public(info: dict[str, Any]) -> dict[str, Any]:
    return {k: info[k] for k in ("url", "pid", "host", "port", "token_required") if k in info}
