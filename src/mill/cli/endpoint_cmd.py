"""mill online-endpoint ... and mill online-deployment ... (as `az ml`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click

from mill.cli.common import connect, output_options, settings, workspace_option
from mill.cli.output import emit
from mill.errors import MillError, UsageError

__all__ = ["online_deployment", "online_endpoint"]

F = TypeVar("F", bound=Callable[..., Any])
_WAIT_POLL_S = 0.5


def _local_flag(func: F) -> F:
    return click.option(
        "--local",
        is_flag=True,
        hidden=False,
        help="Accepted for `az ml` compatibility: everything Mill runs is local.",
    )(func)


def _endpoints(client: Any, suffix: str = "") -> str:
    return client.ws("/online-endpoints" + suffix)


def _q(name: str) -> str:
    return quote(name, safe="")


# online-endpoint -------------------------------------------------------------------
@click.group("online-endpoint")
def online_endpoint() -> None:
    """Online endpoints: a stable scoring URI with key or token auth, in front of deployments."""


@online_endpoint.command("create")
@click.option("-f", "--file", "file_", type=click.Path(dir_okay=False), default=None)
@click.option("-n", "--name", default=None, help="Endpoint name (overrides the file's).")
@click.option("--auth-mode", type=click.Choice(["key", "aml_token"]), default=None)
@_local_flag
@workspace_option
@output_options
def endpoint_create(
    file_: str | None,
    name: str | None,
    auth_mode: str | None,
    local: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Create an endpoint from its YAML (managedOnlineEndpoint)."""
    from mill import specs

    body: dict[str, Any] = {}
    if file_:
        spec = specs.load_online_endpoint(Path(file_))
        body = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if name:
        body["name"] = name
    if auth_mode:
        body["auth_mode"] = auth_mode
    if "name" not in body:
        raise UsageError("an endpoint needs a name: give --file or --name")
    client = connect(workspace)
    emit(client.request("POST", _endpoints(client), json=body), output, query)


@online_endpoint.command("update")
@click.option("-n", "--name", required=True)
@click.option("-f", "--file", "file_", type=click.Path(dir_okay=False), default=None)
@click.option("-t", "--traffic", default=None, metavar='"blue=90 green=10"')
@click.option("--mirror-traffic", default=None, metavar='"green=10"')
@click.option("-d", "--description", default=None)
@_local_flag
@workspace_option
@output_options
def endpoint_update(
    name: str,
    file_: str | None,
    traffic: str | None,
    mirror_traffic: str | None,
    description: str | None,
    local: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Change traffic, mirror traffic, description, tags or auth mode."""
    from mill import specs

    body: dict[str, Any] = {}
    if file_:
        spec = specs.load_online_endpoint(Path(file_))
        body = spec.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)
    if traffic is not None:
        body["traffic"] = specs.parse_traffic(traffic)
    if mirror_traffic is not None:
        body["mirror_traffic"] = specs.parse_traffic(mirror_traffic, mirror=True)
    if description is not None:
        body["description"] = description
    client = connect(workspace)
    emit(client.request("PATCH", _endpoints(client, f"/{_q(name)}"), json=body), output, query)


@online_endpoint.command("show")
@click.option("-n", "--name", required=True)
@_local_flag
@workspace_option
@output_options
def endpoint_show(
    name: str, local: bool, workspace: str, output: str | None, query: str | None
) -> None:
    """Show an endpoint: scoring URI, traffic, deployments and recent traffic."""
    client = connect(workspace)
    emit(client.request("GET", _endpoints(client, f"/{_q(name)}")), output, query)


@online_endpoint.command("list")
@_local_flag
@workspace_option
@output_options
def endpoint_list(local: bool, workspace: str, output: str | None, query: str | None) -> None:
    """List the workspace's endpoints."""
    client = connect(workspace)
    rows = client.request("GET", _endpoints(client))
    emit(
        rows,
        output,
        query,
        columns=(
            ("Name", "name"),
            ("Auth", "auth_mode"),
            ("State", "provisioning_state"),
            ("Traffic", "traffic"),
            ("ScoringUri", "scoring_uri"),
        ),
    )


@online_endpoint.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Accepted for `az ml` compatibility.")
@_local_flag
@workspace_option
def endpoint_delete(name: str, yes: bool, no_wait: bool, local: bool, workspace: str) -> None:
    """Delete an endpoint, its deployments and their replicas."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete endpoint {name!r} and all its deployments?", abort=True)
    client = connect(workspace)
    client.request("DELETE", _endpoints(client, f"/{_q(name)}"))
    click.echo(f"Deleted endpoint {name!r}.", err=True)


@online_endpoint.command("get-credentials")
@click.option("-n", "--name", required=True)
@workspace_option
@output_options
def endpoint_credentials(name: str, workspace: str, output: str | None, query: str | None) -> None:
    """The endpoint's keys (key auth) or a fresh token (aml_token auth)."""
    client = connect(workspace)
    emit(client.request("POST", _endpoints(client, f"/{_q(name)}/credentials")), output, query)


@online_endpoint.command("regenerate-keys")
@click.option("-n", "--name", required=True)
@click.option(
    "--key-type", type=click.Choice(["primary", "secondary"]), default="primary", show_default=True
)
@workspace_option
@output_options
def endpoint_regenerate(
    name: str, key_type: str, workspace: str, output: str | None, query: str | None
) -> None:
    """Replace one key (the other keeps working, so clients can move over)."""
    client = connect(workspace)
    path = _endpoints(client, f"/{_q(name)}/regenerate-keys")
    emit(client.request("POST", path, json={"key_type": key_type}), output, query)


@online_endpoint.command("invoke")
@click.option("-n", "--name", required=True)
@click.option("-r", "--request-file", type=click.Path(dir_okay=False, exists=True), required=True)
@click.option("-d", "--deployment-name", default=None, help="Send to this deployment only.")
@_local_flag
@workspace_option
def endpoint_invoke(
    name: str, request_file: str, deployment_name: str | None, local: bool, workspace: str
) -> None:
    """Score a request file through the endpoint's scoring URI, as any client would."""
    import httpx

    client = connect(workspace)
    endpoint = client.request("GET", _endpoints(client, f"/{_q(name)}"))
    credentials = client.request("POST", _endpoints(client, f"/{_q(name)}/credentials"))
    secret = credentials.get("primaryKey") or credentials.get("accessToken")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    if deployment_name:
        headers["azureml-model-deployment"] = deployment_name
    uri = endpoint.get("scoring_uri")
    if not uri:
        raise UsageError("the server has no scoring gateway running")
    config = settings()
    tls_cert = config.gateway_tls_cert or config.home / "tls" / "gateway-cert.pem"
    verify: Any = str(tls_cert) if uri.startswith("https") and tls_cert.is_file() else True
    try:
        response = httpx.post(
            uri,
            content=Path(request_file).read_bytes(),
            headers=headers,
            timeout=300,
            verify=verify,
        )
    except httpx.TransportError as exc:
        raise UsageError(f"cannot reach {uri}: {exc}") from exc
    text = response.text
    if response.status_code >= 400:
        raise _ScoringError(response.status_code, text)
    click.echo(text)


class _ScoringError(MillError):
    code = "scoring_failed"

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"the endpoint answered {status}: {body[:2000]}")


# online-deployment -----------------------------------------------------------------
@click.group("online-deployment")
def online_deployment() -> None:
    """Online deployments: a model served by replica processes behind an endpoint."""


def _deployment_options(func: F) -> F:
    func = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="PATH=VALUE",
        help="Override a field of the YAML, e.g. --set model=azureml:iris:3 (repeatable).",
    )(func)
    func = click.option("-e", "--endpoint-name", default=None)(func)
    func = click.option(
        "-n", "--name", default=None, help="Deployment name (overrides the file's)."
    )(func)
    func = click.option("-f", "--file", "file_", type=click.Path(dir_okay=False), required=True)(
        func
    )
    return func


@online_deployment.command("create")
@_deployment_options
@click.option(
    "--all-traffic", is_flag=True, help="Send all the endpoint's traffic here once ready."
)
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting until it serves.")
@_local_flag
@workspace_option
@output_options
def deployment_create(
    file_: str,
    name: str | None,
    endpoint_name: str | None,
    overrides: tuple[str, ...],
    all_traffic: bool,
    no_wait: bool,
    local: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Create a deployment from its YAML (managedOnlineDeployment) and wait until it serves."""
    client = connect(workspace)
    body, endpoint = _prepare(client, file_, name, endpoint_name, overrides)
    path = _endpoints(client, f"/{_q(endpoint)}/deployments")
    created = client.request("POST", path, json=body, params={"all_traffic": all_traffic})
    result = created if no_wait else _wait(client, endpoint, created["name"])
    emit(result, output, query)


@online_deployment.command("update")
@_deployment_options
@click.option("--no-wait", is_flag=True)
@_local_flag
@workspace_option
@output_options
def deployment_update(
    file_: str,
    name: str | None,
    endpoint_name: str | None,
    overrides: tuple[str, ...],
    no_wait: bool,
    local: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Roll out a new definition: new replicas take over when ready, the old ones drain."""
    client = connect(workspace)
    body, endpoint = _prepare(client, file_, name, endpoint_name, overrides)
    path = _endpoints(client, f"/{_q(endpoint)}/deployments/{_q(body['name'])}")
    updated = client.request("PUT", path, json=body)
    result = updated if no_wait else _wait(client, endpoint, updated["name"])
    emit(result, output, query)


@online_deployment.command("show")
@click.option("-n", "--name", required=True)
@click.option("-e", "--endpoint-name", required=True)
@_local_flag
@workspace_option
@output_options
def deployment_show(
    name: str,
    endpoint_name: str,
    local: bool,
    workspace: str,
    output: str | None,
    query: str | None,
) -> None:
    """Show a deployment: its state, replicas, and the reason when it failed."""
    client = connect(workspace)
    path = _endpoints(client, f"/{_q(endpoint_name)}/deployments/{_q(name)}")
    emit(client.request("GET", path), output, query)


@online_deployment.command("list")
@click.option("-e", "--endpoint-name", required=True)
@_local_flag
@workspace_option
@output_options
def deployment_list(
    endpoint_name: str, local: bool, workspace: str, output: str | None, query: str | None
) -> None:
    """List an endpoint's deployments."""
    client = connect(workspace)
    rows = client.request("GET", _endpoints(client, f"/{_q(endpoint_name)}/deployments"))
    emit(
        rows,
        output,
        query,
        columns=(
            ("Name", "name"),
            ("Kind", "kind"),
            ("State", "provisioning_state"),
            ("Instances", "instance_count"),
            ("Model", "model"),
        ),
    )


@online_deployment.command("delete")
@click.option("-n", "--name", required=True)
@click.option("-e", "--endpoint-name", required=True)
@click.option("-y", "--yes", is_flag=True)
@click.option("--no-wait", is_flag=True)
@_local_flag
@workspace_option
def deployment_delete(
    name: str, endpoint_name: str, yes: bool, no_wait: bool, local: bool, workspace: str
) -> None:
    """Delete a deployment (it must take no live traffic) and stop its replicas."""
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete deployment {name!r} of {endpoint_name!r}?", abort=True)
    client = connect(workspace)
    client.request("DELETE", _endpoints(client, f"/{_q(endpoint_name)}/deployments/{_q(name)}"))
    click.echo(f"Deleted deployment {name!r}.", err=True)


@online_deployment.command("get-logs")
@click.option("-n", "--name", required=True)
@click.option("-e", "--endpoint-name", required=True)
@click.option("-l", "--lines", type=int, default=200, show_default=True)
@_local_flag
@workspace_option
def deployment_logs(name: str, endpoint_name: str, lines: int, local: bool, workspace: str) -> None:
    """The last lines of the deployment's replica logs."""
    client = connect(workspace)
    path = _endpoints(client, f"/{_q(endpoint_name)}/deployments/{_q(name)}/logs")
    result = client.request("GET", path, params={"lines": lines})
    for file_name, text in result["logs"].items():
        click.echo(f"==> {file_name} <==")
        click.echo(text)


def _prepare(
    client: Any,
    file_: str,
    name: str | None,
    endpoint_name: str | None,
    overrides: tuple[str, ...] = (),
) -> tuple[dict[str, Any], str]:
    """Load the YAML and upload what it points at locally (code, model files, environment)."""
    from mill import specs
    from mill.client.uploads import portable_environment, upload_code, upload_local_data

    def progress(message: str) -> None:
        click.echo(message, err=True)

    spec = specs.load_online_deployment(Path(file_), overrides)
    body: dict[str, Any] = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if name:
        body["name"] = name
    endpoint = endpoint_name or body.get("endpoint_name")
    if not endpoint:
        raise UsageError(
            f"{file_}: no endpoint_name in the file; give --endpoint-name",
        )
    body["endpoint_name"] = endpoint
    code = body.get("code_configuration")
    if code and specs.classify_path(str(code.get("code", ""))) == "local":
        code["code"] = upload_code(client, _local(code["code"]), progress)
    model = body.get("model")
    if (
        isinstance(model, dict)
        and model.get("path")
        and specs.classify_path(str(model["path"])) == "local"
    ):
        model["path"] = upload_local_data(client, _local(model["path"]), progress)
    if isinstance(body.get("environment"), dict):
        body["environment"] = portable_environment(client, body["environment"], progress)
    return body, endpoint


def _local(path: str) -> Path:
    return Path(path[len("file:") :] if path.startswith("file:") else path)


def _wait(client: Any, endpoint: str, name: str) -> dict[str, Any]:
    path = _endpoints(client, f"/{_q(endpoint)}/deployments/{_q(name)}")
    shown: dict[str, Any] = client.request("GET", path)
    said = False
    while shown["provisioning_state"] in ("Creating", "Updating"):
        if not said:
            click.echo(f"Waiting for deployment {name!r} to serve ...", err=True)
            said = True
        time.sleep(_WAIT_POLL_S)
        shown = client.request("GET", path)
    if shown["provisioning_state"] == "Failed":
        raise _DeploymentFailed(name, shown.get("error") or "no reason recorded")
    return shown


class _DeploymentFailed(MillError):
    code = "deployment_failed"

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            f"deployment {name!r} failed: {reason}",
            hint="see its logs: mill online-deployment get-logs",
        )
