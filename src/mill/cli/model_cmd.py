"""mill model create|show|list|download|update|archive|restore|validate|convert"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click

from mill.cli.assets import add_archive_commands, download_files
from mill.cli.common import connect, output_options, workspace_option
from mill.cli.output import emit
from mill.cli.parsing import key_values

__all__ = ["model"]

F = TypeVar("F", bound=Callable[..., Any])

_COLUMNS = (
    ("Name", "name"),
    ("Version", "version"),
    ("Type", "type"),
    ("Job", "job_name"),
    ("Bytes", "size_bytes"),
    ("Description", "description"),
)


@click.group()
def model() -> None:
    """The model registry: custom, MLflow and Triton models, versioned, with lineage."""


def _spec_options(func: F) -> F:
    for option in reversed(
        [
            click.option(
                "-f", "--file", "file_", type=click.Path(dir_okay=False), help="Model YAML."
            ),
            click.option("-n", "--name", default=None),
            click.option("-v", "--version", default=None, help="Default: the next version."),
            click.option(
                "-t",
                "--type",
                "type_",
                type=click.Choice(["custom_model", "mlflow_model", "triton_model"]),
                default=None,
            ),
            click.option(
                "-p",
                "--path",
                default=None,
                help="Local file/folder, azureml://jobs/<job>/outputs/<out>/paths/<p>, "
                "runs:/<run>/<p>, a datastore URI or a URL.",
            ),
            click.option("-d", "--description", default=None),
            click.option("--stage", default=None, help="Free text, e.g. Production."),
            click.option("--tags", multiple=True, metavar="KEY=VALUE"),
            click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE"),
        ]
    ):
        func = option(func)
    return func


def _body(
    file_: str | None,
    name: str | None,
    version: str | None,
    type_: str | None,
    path: str | None,
    description: str | None,
    stage: str | None,
    tags: tuple[str, ...],
    overrides: tuple[str, ...],
) -> dict[str, Any]:
    """The model as file and flags give it; a local path is made absolute and checked here."""
    from mill import specs
    from mill.errors import SpecError
    from mill.specs.model_formats import inspect_model

    body: dict[str, Any] = {}
    if file_:
        spec = specs.load_model(Path(file_), overrides)
        body = spec.model_dump(mode="json", exclude_none=True, exclude={"schema_"})
    for key, value in (
        ("name", name),
        ("version", version),
        ("type", type_),
        ("description", description),
        ("stage", stage),
        ("path", path),
    ):
        if value is not None:
            body[key] = value
    if tags:
        body["tags"] = {**body.get("tags", {}), **key_values(tags, "--tags")}
    spec = specs.parse_model(body)
    if spec.is_local:
        local = Path(specs.references.strip_file_prefix(spec.path)).expanduser().resolve()
        if not local.exists():
            raise SpecError.one("no such file or folder", field="path", value=str(local))
        inspect_model(spec.type, local)  # a wrong layout fails before anything uploads
        body["path"] = str(local)
    return body


@model.command("create")
@_spec_options
@workspace_option
@output_options
def create_cmd(workspace: str, output: str | None, query: str | None, **fields: Any) -> None:
    """Register a new version; a local path is uploaded first."""
    from mill import specs
    from mill.cli.progress import transfer_progress
    from mill.client.transfer import local_files, upload_path

    body = _body(**fields)
    client = connect(workspace)
    if specs.parse_model(body).is_local:
        local = Path(body["path"])
        target = client.new_model_upload(local.name)
        total = sum(size for _, _, size in local_files(local))
        with transfer_progress(f"Uploading {local.name}", total) as advance:
            upload_path(client, local, target["uri"], advance)
        body["path"] = target["uri"]
        body["source"] = {"kind": "local_upload", "local_path": str(local)}
    emit(client.create_model(body), output, query)


@model.command("validate")
@_spec_options
@workspace_option
@output_options
def validate_cmd(workspace: str, output: str | None, query: str | None, **fields: Any) -> None:
    """Check a model definition and its files without registering anything."""
    from mill import specs

    body = _body(**fields)
    if specs.parse_model(body).is_local:
        emit({"valid": True, "name": body.get("name"), "path": body["path"]}, output, query)
        return
    emit({"valid": True, **connect(workspace).create_model(body, True)}, output, query)


@model.command("show")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None, help="latest, or an alias.")
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
    """One version (default: the latest): format, flavors, signature, lineage, source."""
    emit(connect(workspace).show_model(name, version, label), output, query)


@model.command("list")
@click.option("-n", "--name", default=None, help="List this model's versions.")
@click.option("--include-archived", is_flag=True)
@workspace_option
@output_options
def list_cmd(
    name: str | None, include_archived: bool, workspace: str, output: str | None, query: str | None
) -> None:
    """Each model's latest version, or every version of --name."""
    emit(connect(workspace).list_models(name, include_archived), output, query, columns=_COLUMNS)


@model.command("update")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", required=True)
@click.option("-d", "--description", default=None)
@click.option("--stage", default=None)
@click.option("--tags", multiple=True, metavar="KEY=VALUE", help="Replaces the tags.")
@workspace_option
@output_options
def update_cmd(
    name: str,
    version: str,
    description: str | None,
    stage: str | None,
    tags: tuple[str, ...],
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Change a version's description, stage or tags (its files and type stay)."""
    body: dict[str, Any] = {}
    if description is not None:
        body["description"] = description
    if stage is not None:
        body["stage"] = stage
    if tags:
        body["tags"] = key_values(tags, "--tags")
    emit(connect(workspace).update_model(name, version, body), output, query)


add_archive_commands(
    model,
    "model",
    lambda client, name, version, restore: client.archive_model(name, version, restore),
)


@model.command("download")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", default=None)
@click.option("-l", "--label", default=None)
@click.option(
    "-p",
    "--download-path",
    default=".",
    type=click.Path(file_okay=False),
    help="Files land in <download-path>/<name>/.",
)
@workspace_option
def download_cmd(
    name: str, version: str | None, label: str | None, download_path: str, workspace: str
) -> None:
    """Download a version's files."""
    client = connect(workspace)
    shown = client.show_model(name, version, label)
    listing = client.request("GET", client.ws("/storage/files"), params={"uri": shown["path"]})
    download_files(client, name, shown["path"], listing, download_path)


@model.command("convert")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", required=True)
@click.option("--to", "to", type=click.Choice(["onnx"]), default="onnx", show_default=True)
@click.option("--triton", is_flag=True, help="Register a Triton repository (onnxruntime).")
@click.option(
    "--sample-input",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="A .json (MLflow split/records/inputs, or rows) or .csv file to compare the "
    "models on. Default: the MLmodel's input example, else random input from its signature.",
)
@click.option("--opset", type=int, default=None, help="ONNX opset (default: the converter's).")
@workspace_option
@output_options
def convert_cmd(
    name: str,
    version: str,
    to: str,
    triton: bool,
    sample_input: str | None,
    opset: int | None,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Convert a scikit-learn or PyTorch version to ONNX, check it agrees, register it."""
    body: dict[str, Any] = {"to": to, "triton": triton}
    if sample_input is not None:
        body["sample_input"] = _read_sample(Path(sample_input))
    if opset is not None:
        body["opset"] = opset
    client = connect(workspace)
    path = client.ws(f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/convert")
    emit(client.request("POST", path, json=body, timeout=_CONVERT_TIMEOUT_S), output, query)


_CONVERT_TIMEOUT_S = 960.0  # the server stops a conversion after 900 s


def _read_sample(path: Path) -> Any:
    """A sample file as JSON data: .json as it is, .csv as MLflow's split form."""
    import csv
    import json

    from mill.errors import UsageError

    if path.suffix.lower() == ".json":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise UsageError(f"{path}: not JSON: {exc}") from None
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            raise UsageError(f"{path}: a sample CSV needs a header row and at least one row")
        return {"columns": rows[0], "data": [[_csv_value(v) for v in row] for row in rows[1:]]}
    raise UsageError(f"{path}: --sample-input must be a .json or .csv file")


def _csv_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@model.command("package")
@click.option("-n", "--name", required=True)
@click.option("-v", "--version", required=True)
@click.option(
    "-o",
    "--output-path",
    default=".",
    type=click.Path(file_okay=False),
    help="The package lands in <output-path>/<name>-<version>/.",
)
@workspace_option
def package_cmd(name: str, version: str, output_path: str, workspace: str) -> None:
    """Write a self-contained folder: the model, its environment, score.py, endpoint YAML."""
    client = connect(workspace)
    built = client.request(
        "POST",
        client.ws(f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/package"),
    )
    listing = client.request("GET", client.ws("/storage/files"), params={"uri": built["uri"]})
    download_files(client, f"{name}-{version}", built["uri"], listing, output_path)
