"""mill job create|show|list|stream|cancel|download|archive|restore|validate"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit

__all__ = ["job"]

_COLUMNS = (
    ("Name", "name"),
    ("DisplayName", "display_name"),
    ("Status", "status"),
    ("Experiment", "experiment_name"),
    ("Compute", "compute"),
    ("Created", "creation_context.created_at"),
)
_LOG_FILE = "user_logs/std_log.txt"
_BUILD_LOG = "azureml-logs/20_image_build_log.txt"
F = TypeVar("F", bound=Callable[..., Any])


@click.group()
def job() -> None:
    """Jobs: run Azure ML command-job YAML on this machine."""


def _file_options(func: F) -> F:
    func = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="PATH=VALUE",
        help="Override a field of the YAML, e.g. --set inputs.lr=0.1 (repeatable).",
    )(func)
    func = click.option("-n", "--name", default=None, help="Job name (default: a generated one).")(
        func
    )
    func = click.option(
        "-f",
        "--file",
        "file_",
        required=True,
        type=click.Path(dir_okay=False),
        help="Job YAML file.",
    )(func)
    return func


@job.command("create")
@_file_options
@click.option(
    "-s", "--stream", is_flag=True, help="Stream the logs; exit non-zero unless the job completes."
)
@workspace_option
@output_options
def create_cmd(
    file_: str,
    name: str | None,
    overrides: tuple[str, ...],
    stream: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Submit a job from a YAML file."""
    client = connect(workspace)
    created = client.create_job(_prepare(client, file_, name, overrides))
    if stream:
        _stream(client, created["name"])
    else:
        emit(created, output, query)


@job.command("validate")
@_file_options
@workspace_option
@output_options
def validate_cmd(
    file_: str,
    name: str | None,
    overrides: tuple[str, ...],
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Check a job YAML (and what it refers to) without running it."""
    client = connect(workspace)
    result = client.create_job(_prepare(client, file_, name, overrides), validate_only=True)
    emit(result, output, query)
    click.echo(f"{file_} is valid.", err=True)


@job.command("show")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def show_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """Show a job: status, inputs, outputs, timing, and the reason when it failed."""
    emit(connect(workspace).show_job(name), output, query)


@job.command("list")
@click.option("--experiment-name", default=None)
@click.option("--status", default=None)
@click.option("--include-archived", is_flag=True)
@click.option("--archived-only", is_flag=True)
@click.option("-r", "--max-results", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option(
    "--filter",
    "filter_",
    default=None,
    help='MLflow search filter on the jobs\' runs, e.g. "metrics.accuracy > 0.9".',
)
@click.option("--order-by", multiple=True, help="e.g. metrics.accuracy DESC (repeatable).")
@workspace_option
@output_options
def list_cmd(
    experiment_name: str | None,
    status: str | None,
    include_archived: bool,
    archived_only: bool,
    max_results: int,
    filter_: str | None,
    order_by: tuple[str, ...],
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """List jobs, newest first (or as --order-by says)."""
    jobs = connect(workspace).list_jobs(
        experiment_name=experiment_name,
        status=status,
        include_archived=include_archived,
        archived_only=archived_only,
        max_results=max_results,
        filter=filter_,
        order_by=list(order_by) or None,
    )
    emit(jobs, output, query, columns=_COLUMNS, default="table")


@job.command("metrics")
@click.option("-n", "--name", required=True)
@click.option("--history", default=None, metavar="KEY", help="Every logged value of one metric.")
@workspace_option
@output_options
def metrics_cmd(
    name: str, history: str | None, workspace: str, output: str | None, query: str | None
) -> None:
    """A job's latest metrics, or the history of one."""
    result = connect(workspace).job_metrics(name, history)
    if history:
        emit(
            result["history"],
            output,
            query,
            columns=(("Step", "step"), ("Value", "value"), ("Time", "timestamp")),
            default="table",
        )
    else:
        rows = [{"metric": k, "value": v} for k, v in sorted(result["metrics"].items())]
        emit(rows if not query else result, output, query, default="table")


@job.command("compare")
@click.argument("names", nargs=-1, required=True)
@workspace_option
@output_options
def compare_cmd(
    names: tuple[str, ...], workspace: str, output: str | None, query: str | None
) -> None:
    """Params and metrics of jobs side by side; '*' marks what differs."""
    result = connect(workspace).compare_jobs(list(names))
    if output or query:
        emit(result, output, query)
        return
    rows = []
    for section in ("params", "metrics"):
        table = result[section]
        for key, values in table["values"].items():
            mark = "*" if key in table["differs"] else ""
            rows.append(
                {
                    "": mark,
                    "kind": section[:-1],
                    "key": key,
                    **{
                        n: ("" if v is None else v)
                        for n, v in zip(result["jobs"], values, strict=True)
                    },
                }
            )
    emit(rows, "table", None)


@job.command("stream")
@click.option("-n", "--name", required=True)
@workspace_option
def stream_cmd(name: str, workspace: str) -> None:
    """Stream a job's logs until it ends; exit non-zero unless it completes."""
    _stream(connect(workspace), name)


@job.command("cancel")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def cancel_cmd(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """Cancel a job, stopping its whole process tree."""
    emit(connect(workspace).job_action(name, "cancel"), output, query)


@job.command("archive")
@click.option("-n", "--name", required=True)
@workspace_option
def archive_cmd(name: str, workspace: str) -> None:
    """Hide a job from `job list` (it stays readable; `job restore` brings it back)."""
    connect(workspace).job_action(name, "archive")
    click.echo(f"Archived job {name!r}.", err=True)


@job.command("restore")
@click.option("-n", "--name", required=True)
@workspace_option
def restore_cmd(name: str, workspace: str) -> None:
    """Bring an archived job back into `job list`."""
    connect(workspace).job_action(name, "restore")
    click.echo(f"Restored job {name!r}.", err=True)


@job.command("download")
@click.option("-n", "--name", required=True)
@click.option(
    "--output-name", default=None, help="One named output (default: the job's artifacts)."
)
@click.option("--all", "all_", is_flag=True, help="The artifacts and every named output.")
@click.option(
    "-p", "--download-path", default=".", show_default=True, type=click.Path(file_okay=False)
)
@workspace_option
def download_cmd(
    name: str, output_name: str | None, all_: bool, download_path: str, workspace: str
) -> None:
    """Download a job's outputs.

    The artifacts go to <path>/artifacts, named outputs to <path>/named-outputs/<name>.
    """
    from mill.cli.downloads import download_output
    from mill.errors import UsageError

    if all_ and output_name:
        raise UsageError("use either --output-name or --all, not both")
    client = connect(workspace)
    if all_:
        outputs = client.show_job(name)["outputs"]
        names = [o for o, spec in outputs.items() if (spec or {}).get("mode") != "direct"]
    else:
        names = [output_name or "artifacts"]
    root = Path(download_path)
    for output in names:
        target = root / "artifacts" if output == "artifacts" else root / "named-outputs" / output
        count = download_output(client, name, output, target)
        click.echo(f"Downloaded {output!r} ({count} file(s)) to {target}", err=True)


def _prepare(
    client: Any, file_: str, name: str | None, overrides: tuple[str, ...]
) -> dict[str, Any]:
    """Load the YAML, upload local code and data, and return the spec the server takes."""
    from mill import specs
    from mill.client.uploads import portable_environment, upload_code, upload_local_data

    spec = specs.load_command_job(Path(file_), overrides)
    if name:
        spec.name = name

    def progress(message: str) -> None:
        click.echo(message, err=True)

    if spec.code:
        spec.code = upload_code(client, Path(spec.code), progress)
    for item in spec.inputs.values():
        if (
            item.path
            and item.type not in specs.LITERAL_INPUT_TYPES
            and specs.classify_path(item.path) == "local"
        ):
            local = item.path[len("file:") :] if item.path.startswith("file:") else item.path
            item.path = upload_local_data(client, Path(local), progress)
    if isinstance(spec.environment, dict):
        spec.environment = portable_environment(client, spec.environment, progress)
    body: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body


def _stream(client: Any, name: str) -> None:
    from mill.errors import JobFailedError

    out = sys.stdout
    out.write(f"RunId: {name}\n")
    out.flush()
    try:
        # The environment build log first (empty when the environment was cached), then the job's.
        _follow(client, name, _BUILD_LOG, until_started=True, header=True)
        out.write(f"\nStreaming {_LOG_FILE}\n{'=' * (10 + len(_LOG_FILE))}\n\n")
        out.flush()
        _follow(client, name, _LOG_FILE, until_started=False, header=False)
    except KeyboardInterrupt:
        click.echo(
            f"\nStopped streaming; the job keeps running. Resume: mill job stream --name {name}",
            err=True,
        )
        raise SystemExit(130) from None
    result = client.show_job(name)
    out.write(
        f"\nExecution Summary\n=================\nRunId: {name}\nStatus: {result['status']}\n"
    )
    out.flush()
    if result["status"] != "Completed":
        reason = (result.get("error") or {}).get("message") or "no reason recorded"
        raise JobFailedError(f"job {name!r} ended {result['status']}: {reason}")


def _follow(client: Any, name: str, file: str, *, until_started: bool, header: bool) -> None:
    """Print a log as it grows; reconnect (from where it was) if the server restarts."""
    from mill.errors import ServerUnavailableError

    out = sys.stdout
    offset = 0
    retries = 0
    while True:
        try:
            for chunk in client.stream_logs(
                name, file, offset, follow=True, until_started=until_started
            ):
                if header and offset == 0:
                    out.write(f"\nStreaming {file}\n{'=' * (10 + len(file))}\n\n")
                offset += len(chunk)
                out.buffer.write(chunk)
                out.flush()
            return
        except ServerUnavailableError:
            retries += 1  # the server restarted under us: pick up where we were
            if retries > 20:
                raise
            time.sleep(0.5)
