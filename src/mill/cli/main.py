"""Entry point. Commands load lazily, so `mill --version` imports almost nothing."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

__all__ = ["main"]

# noun -> module:attribute; imported only when that noun is used.
COMMANDS = {
    "compute": "mill.cli.compute_cmd:compute",
    "data": "mill.cli.data_cmd:data",
    "datastore": "mill.cli.datastore_cmd:datastore",
    "environment": "mill.cli.environment_cmd:environment",
    "experiment": "mill.cli.experiment_cmd:experiment",
    "job": "mill.cli.job_cmd:job",
    "model": "mill.cli.model_cmd:model",
    "online-deployment": "mill.cli.endpoint_cmd:online_deployment",
    "online-endpoint": "mill.cli.endpoint_cmd:online_endpoint",
    "secret": "mill.cli.secret_cmd:secret",
    "server": "mill.cli.server_cmd:server",
    "workspace": "mill.cli.workspace_cmd:workspace",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


def _print_version(ctx: click.Context, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from mill import __version__

        click.echo(f"mill {__version__}")
        ctx.exit()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
def cli() -> None:
    """Mill: Azure ML's way of working (jobs, workspaces, computes) on your own machines.

    Add --debug anywhere to see tracebacks.
    """


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    args = [a for a in args if a != "--debug"]
    if debug:
        os.environ["MILL_DEBUG"] = "1"
    try:
        cli.main(args=args, prog_name="mill", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:
        sys.exit(_report(exc, debug))


def _report(exc: Exception, debug: bool) -> int:
    from mill.errors import MillError

    if debug:
        import traceback

        traceback.print_exception(exc)
    if isinstance(exc, MillError):
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        return exc.exit_code
    click.echo(f"Error: unexpected {type(exc).__name__}: {exc}", err=True)
    if not debug:
        click.echo("Run again with --debug to see the traceback.", err=True)
    return 1
