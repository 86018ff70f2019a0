"""Online endpoints: the stable scoring address, its keys or tokens, and its traffic.

The serving plane (gateway + replica supervisor) lives in the control plane's process and
is started by :func:`start_serving`. The store is the truth; the gateway's routing table is
rebuilt from it by :func:`publish` whenever an endpoint, its traffic or its ready replicas
change. Keys and the token-signing secret live in the vault (``endpoint-<name>-...``,
managed by the endpoint) and only in the gateway's memory besides.
"""

from __future__ import annotations

import logging
import secrets as random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from mill import specs
from mill.domain.entities import OnlineDeployment, OnlineEndpoint
from mill.errors import NotFoundError, SpecError, SpecIssue, UsageError
from mill.services import secrets
from mill.services.context import Context
from mill.services.launch import resolve_uri
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.serving.credentials import mint_token, new_key, self_signed_certificate
from mill.serving.gateway import DeploymentRoute, EndpointRoute, Gateway, GatewayServer
from mill.serving.replicas import ReplicaSet, Supervisor
from mill.storage.datastores import datastore_uri

__all__ = [
    "ServingPlane",
    "create",
    "delete",
    "get_credentials",
    "list_endpoints",
    "publish",
    "regenerate_keys",
    "show",
    "start_serving",
    "stop_serving",
    "update",
]

log = logging.getLogger("mill.serving")

_KEYS = ("primary", "secondary")
_TOKEN_SECRET = "token-secret"
_TOKEN_LIFETIME_S = 3600


@dataclass
class ServingPlane:
    """The gateway, the supervisor, and the replica set serving each deployment now."""

    gateway: Gateway
    server: GatewayServer
    supervisor: Supervisor
    active: dict[tuple[str, str], ReplicaSet] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    rollouts: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="mill-rollout")
    )


# The serving plane -----------------------------------------------------------------
def start_serving(ctx: Context, server_port: int) -> ServingPlane:
    """Start the gateway and the supervisor, publish every endpoint and bring back every
    deployment's replicas (a restarted control plane serves what it served before)."""
    from mill.services import deployments

    settings = ctx.settings
    holder: list[ServingPlane] = []

    def replicas_changed(replica_set: ReplicaSet) -> None:
        if holder:
            publish(ctx, replica_set.endpoint)

    def load(endpoint: str, deployment: str) -> int:
        return holder[0].gateway.load(endpoint, deployment) if holder else 0

    supervisor = Supervisor(settings.home, on_change=replicas_changed, load=load)
    gateway = Gateway(
        max_body_bytes=settings.gateway_max_body_mb * 2**20,
        on_replica_lost=supervisor.replica_lost,
        request_log=settings.log_dir / "endpoints.log",
    )
    certfile = keyfile = None
    if settings.gateway_tls:
        if settings.gateway_tls_cert:
            certfile = str(settings.gateway_tls_cert)
            keyfile = str(settings.gateway_tls_key or settings.gateway_tls_cert)
        else:
            hosts = sorted({settings.host, "127.0.0.1", "localhost"})
            cert, key = self_signed_certificate(hosts, settings.home / "tls")
            certfile, keyfile = str(cert), str(key)
    port = settings.gateway_port_for(server_port)
    server = GatewayServer(gateway, settings.host, port, certfile=certfile, keyfile=keyfile)
    try:
        server.start()
    except OSError:
        if settings.gateway_port is not None or port == 0:
            raise  # a port the user chose: say it is taken
        log.warning("port %d is taken; the scoring gateway takes a free one", port)
        server = GatewayServer(gateway, settings.host, 0, certfile=certfile, keyfile=keyfile)
        server.start()
    supervisor.start()
    plane = ServingPlane(gateway=gateway, server=server, supervisor=supervisor)
    holder.append(plane)
    ctx.serving = plane
    log.info("scoring gateway listening on %s", server.url)
    orphans = supervisor.reap_orphans(settings.endpoints_root)
    if orphans:
        log.warning("stopped %d replica(s) left running by a previous server", len(orphans))
    for endpoint in ctx.store.list_endpoints():
        publish(ctx, endpoint.name)
    deployments.recover(ctx)
    return plane


def stop_serving(ctx: Context) -> None:
    plane: ServingPlane | None = ctx.serving
    if plane is None:
        return
    plane.rollouts.shutdown(wait=False, cancel_futures=True)
    plane.supervisor.stop()
    plane.server.stop()
    ctx.serving = None


def plane_of(ctx: Context) -> ServingPlane:
    plane: ServingPlane | None = ctx.serving
    if plane is None:
        raise UsageError("the scoring gateway is not running in this server")
    return plane


def publish(ctx: Context, name: str) -> None:
    """Give the gateway the endpoint's route as the store and the replicas say now."""
    plane: ServingPlane | None = ctx.serving
    if plane is None:
        return
    try:
        endpoint = ctx.store.get_endpoint(name)
    except NotFoundError:
        plane.gateway.remove_endpoint(name)
        return
    routes: dict[str, DeploymentRoute] = {}
    with plane.lock:
        for deployment in ctx.store.list_deployments(name):
            replica_set = plane.active.get((name, deployment.name))
            ready = replica_set.ready_addresses() if replica_set else ()
            routes[deployment.name] = _deployment_route(ctx, endpoint, deployment, ready)
    plane.gateway.set_endpoint(
        EndpointRoute(
            name=endpoint.name,
            auth_mode=endpoint.auth_mode,
            keys=tuple(_secret(ctx, endpoint, k) for k in _KEYS),
            token_secret=_secret(ctx, endpoint, _TOKEN_SECRET).encode(),
            traffic=dict(endpoint.traffic),
            mirror_traffic=dict(endpoint.mirror_traffic),
            deployments=routes,
        )
    )


def _deployment_route(
    ctx: Context, endpoint: OnlineEndpoint, deployment: OnlineDeployment, ready: tuple[Any, ...]
) -> DeploymentRoute:
    settings = deployment.spec.get("request_settings") or {}
    collections = (deployment.spec.get("data_collector") or {}).get("collections") or {}

    def enabled(name: str) -> bool:
        return str((collections.get(name) or {}).get("enabled", "false")).lower() == "true"

    collect_dir = None
    if enabled("model_inputs") or enabled("model_outputs"):
        uri = datastore_uri(
            DEFAULT_DATASTORE, f"modelDataCollector/{endpoint.name}/{deployment.name}"
        )
        collect_dir = str(resolve_uri(ctx, endpoint.workspace, uri))
    return DeploymentRoute(
        name=deployment.name,
        replicas=tuple(ready),
        request_timeout_ms=int(settings.get("request_timeout_ms", 5000)),
        max_concurrent_requests_per_instance=int(
            settings.get("max_concurrent_requests_per_instance", 1)
        ),
        max_queue_wait_ms=int(settings.get("max_queue_wait_ms", 500)),
        collect_inputs=enabled("model_inputs"),
        collect_outputs=enabled("model_outputs"),
        collect_dir=collect_dir,
    )


# Endpoints -------------------------------------------------------------------------
def create(ctx: Context, workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    spec = specs.parse_online_endpoint(body)
    ctx.store.get_workspace(workspace)
    if spec.traffic or spec.mirror_traffic:
        raise SpecError.one(
            "a new endpoint has no deployments to send traffic to",
            field="traffic",
            value=dict(spec.traffic or spec.mirror_traffic),
            allowed="no traffic at creation",
            hint="create deployments first, then: mill online-endpoint update --traffic ...",
        )
    endpoint = ctx.store.create_endpoint(
        OnlineEndpoint(
            workspace=workspace,
            name=spec.name,
            auth_mode=spec.auth_mode,
            description=spec.description,
            tags=dict(spec.tags),
            properties=dict(spec.properties),
        )
    )
    try:
        for key in _KEYS:
            _store_secret(ctx, endpoint, key, new_key())
        _store_secret(ctx, endpoint, _TOKEN_SECRET, random.token_urlsafe(32))
    except BaseException:
        ctx.store.delete_endpoint(endpoint.name)
        raise
    publish(ctx, endpoint.name)
    result = read(ctx, endpoint)
    if spec.notes:
        result["notes"] = list(spec.notes)
    return result


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    endpoint = get_for_workspace(ctx, workspace, name)
    result = read(ctx, endpoint)
    plane: ServingPlane | None = ctx.serving
    if plane is not None:
        result["traffic_summary"] = plane.gateway.summary(name)
    return result


def list_endpoints(ctx: Context, workspace: str) -> list[dict[str, Any]]:
    return [read(ctx, e) for e in ctx.store.list_endpoints(workspace)]


def update(ctx: Context, workspace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change description, tags, auth mode, traffic or mirror traffic (only what is given)."""
    endpoint = get_for_workspace(ctx, workspace, name)
    merged = {
        "name": name,
        "auth_mode": endpoint.auth_mode,
        "description": endpoint.description,
        "tags": endpoint.tags,
        "properties": endpoint.properties,
        "traffic": endpoint.traffic,
        "mirror_traffic": endpoint.mirror_traffic,
    }
    merged.update({k: v for k, v in body.items() if k != "name"})
    spec = specs.parse_online_endpoint(merged)
    deployments = {d.name: d for d in ctx.store.list_deployments(name)}
    _check_traffic(spec.traffic, spec.mirror_traffic, deployments)

    def change(e: OnlineEndpoint) -> None:
        e.auth_mode = spec.auth_mode
        e.description = spec.description
        e.tags = dict(spec.tags)
        e.properties = dict(spec.properties)
        e.traffic = {k: v for k, v in spec.traffic.items() if v}
        e.mirror_traffic = {k: v for k, v in spec.mirror_traffic.items() if v}

    updated = ctx.store.update_endpoint(name, change)
    publish(ctx, name)
    return read(ctx, updated)


def set_traffic(ctx: Context, name: str, traffic: dict[str, int]) -> None:
    """Used by ``online-deployment create --all-traffic`` once the deployment is ready."""

    def change(e: OnlineEndpoint) -> None:
        e.traffic = {k: v for k, v in traffic.items() if v}
        e.mirror_traffic = {k: v for k, v in e.mirror_traffic.items() if k not in e.traffic}

    ctx.store.update_endpoint(name, change)
    publish(ctx, name)


def delete(ctx: Context, workspace: str, name: str) -> None:
    from mill.services import deployments

    endpoint = get_for_workspace(ctx, workspace, name)
    for deployment in ctx.store.list_deployments(name):
        deployments.forget(ctx, deployment)
    ctx.store.delete_endpoint(name)
    plane: ServingPlane | None = ctx.serving
    if plane is not None:
        plane.gateway.remove_endpoint(name)
    for key in (*_KEYS, _TOKEN_SECRET):
        try:
            secrets.delete(ctx, endpoint.workspace, _secret_name(name, key), force=True)
        except NotFoundError:
            pass


def get_credentials(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    """Azure's shape: ``primaryKey``/``secondaryKey`` for key auth, an ``accessToken`` for
    aml_token. The only API answer that holds a secret, and only for the endpoint's caller."""
    endpoint = get_for_workspace(ctx, workspace, name)
    if endpoint.auth_mode == "aml_token":
        secret = _secret(ctx, endpoint, _TOKEN_SECRET).encode()
        return mint_token(secret, name, _TOKEN_LIFETIME_S)
    return {
        "primaryKey": _secret(ctx, endpoint, "primary"),
        "secondaryKey": _secret(ctx, endpoint, "secondary"),
    }


def regenerate_keys(ctx: Context, workspace: str, name: str, key_type: str) -> dict[str, Any]:
    """A new primary or secondary key (the other keeps working: rotate one at a time); for
    aml_token endpoints a new signing secret, which ends every token given out so far."""
    endpoint = get_for_workspace(ctx, workspace, name)
    if key_type not in _KEYS:
        raise UsageError(f"unknown key type {key_type!r}; allowed: primary, secondary")
    if endpoint.auth_mode == "aml_token":
        _store_secret(ctx, endpoint, _TOKEN_SECRET, random.token_urlsafe(32))
    else:
        _store_secret(ctx, endpoint, key_type, new_key())
    publish(ctx, name)
    return {"name": name, "regenerated": key_type if endpoint.auth_mode == "key" else "token"}


def read(ctx: Context, endpoint: OnlineEndpoint) -> dict[str, Any]:
    deployments = ctx.store.list_deployments(endpoint.name)
    states = {d.state for d in deployments}
    state = "Updating" if states & {"Creating", "Updating", "Deleting"} else "Succeeded"
    base = _gateway_url(ctx)
    return {
        "name": endpoint.name,
        "workspace": endpoint.workspace,
        "auth_mode": endpoint.auth_mode,
        "description": endpoint.description,
        "tags": endpoint.tags,
        "properties": endpoint.properties,
        "traffic": endpoint.traffic,
        "mirror_traffic": endpoint.mirror_traffic,
        "provisioning_state": state,
        "scoring_uri": f"{base}/endpoints/{endpoint.name}/score" if base else None,
        "openapi_uri": f"{base}/endpoints/{endpoint.name}/swagger.json" if base else None,
        "deployments": [
            {"name": d.name, "provisioning_state": d.state, "kind": d.kind} for d in deployments
        ],
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }


def get_for_workspace(ctx: Context, workspace: str, name: str) -> OnlineEndpoint:
    """The endpoint, or 404 when it is not this workspace's."""
    endpoint = ctx.store.get_endpoint(name)
    if endpoint.workspace != workspace:
        raise NotFoundError(
            f"online endpoint {name!r} not found in workspace {workspace!r}",
            hint=f"it belongs to workspace {endpoint.workspace!r}",
        )
    return endpoint


def _check_traffic(
    traffic: dict[str, int], mirror: dict[str, int], deployments: dict[str, OnlineDeployment]
) -> None:
    issues: list[SpecIssue] = []
    known = ", ".join(sorted(deployments)) or "none yet"
    for field_name, shares in (("traffic", traffic), ("mirror_traffic", mirror)):
        for name, share in shares.items():
            if name not in deployments:
                issues.append(
                    SpecIssue(
                        f"no deployment {name!r} in this endpoint",
                        field=f"{field_name}.{name}",
                        value=share,
                        allowed=known,
                    )
                )
    for name, share in mirror.items():
        if share and traffic.get(name):
            issues.append(
                SpecIssue(
                    "a deployment that takes live traffic cannot also receive mirrored traffic",
                    field=f"mirror_traffic.{name}",
                    value=share,
                    allowed="a deployment with 0 live traffic",
                )
            )
    if issues:
        raise SpecError(issues)


def _gateway_url(ctx: Context) -> str | None:
    plane: ServingPlane | None = ctx.serving
    return plane.server.url if plane is not None else None


def _secret_name(endpoint: str, key: str) -> str:
    return f"endpoint-{endpoint}-{key}"


def _store_secret(ctx: Context, endpoint: OnlineEndpoint, key: str, value: str) -> None:
    secrets.set_secret(
        ctx,
        endpoint.workspace,
        _secret_name(endpoint.name, key),
        value,
        description=f"{key} of online endpoint {endpoint.name}",
        managed_by=f"online-endpoint:{endpoint.name}",
    )


def _secret(ctx: Context, endpoint: OnlineEndpoint, key: str) -> str:
    return secrets.reveal(ctx, endpoint.workspace, _secret_name(endpoint.name, key))
