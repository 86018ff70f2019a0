"""Online deployments: a model served by replica processes in its own environment.

Creating or updating a deployment stores it (``Creating``/``Updating``) and hands the
rollout to a background thread: build (or find) the environment, lay out the code and the
model as Azure does (``AZUREML_MODEL_DIR``), start ``instance_count`` replicas and wait until
every one answers its health check. Only then does the gateway see them; the replicas of
the previous generation are taken out of the route at the same moment and stopped once
their requests in flight had time to finish (``request_timeout_ms``). So an update never
fails a request, and a deployment whose ``init()`` fails is marked ``Failed`` with the log's
last lines while the endpoint goes on serving its other deployments (and, for a failed
update, the previous generation of this one).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mill import specs
from mill.domain.entities import OnlineDeployment
from mill.errors import MillError, NotFoundError, SpecError, UsageError
from mill.services import building, endpoints, environments, models, secrets
from mill.services.context import Context
from mill.services.launch import resolve_uri
from mill.services.uploads import snapshot_files
from mill.serving import model_plans
from mill.serving.replicas import ProbeSettings, ReplicaSet, ScalePolicy, log_excerpt

__all__ = [
    "create",
    "delete",
    "forget",
    "get_logs",
    "list_deployments",
    "recover",
    "show",
    "stop_replicas",
    "update",
]

log = logging.getLogger("mill.serving")

_STARTUP_TIMEOUT_S = 600.0
_NO_CODE_PACKAGES = {
    "onnx": ["onnxruntime", "numpy"],
    "triton": ["onnxruntime", "numpy"],
}


def create(
    ctx: Context,
    workspace: str,
    endpoint: str,
    body: dict[str, Any],
    *,
    all_traffic: bool = False,
) -> dict[str, Any]:
    owner = endpoints.get_for_workspace(ctx, workspace, endpoint)
    deployment = _prepare(ctx, owner.workspace, endpoint, body)
    stored = ctx.store.create_deployment(deployment)
    endpoints.publish(ctx, endpoint)
    _start_rollout(ctx, stored, all_traffic=all_traffic)
    return read(ctx, stored)


def update(
    ctx: Context, workspace: str, endpoint: str, name: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Replace the deployment's definition; the new generation takes over when ready."""
    endpoints.get_for_workspace(ctx, workspace, endpoint)
    current = ctx.store.get_deployment(endpoint, name)
    if current.state in ("Creating", "Updating"):
        raise UsageError(
            f"deployment {name!r} is {current.state.lower()}; wait until it has finished",
            hint=f"see: mill online-deployment show --endpoint-name {endpoint} --name {name}",
        )
    fresh = _prepare(ctx, workspace, endpoint, {**body, "name": name})

    def change(d: OnlineDeployment) -> None:
        d.kind = fresh.kind
        d.spec = fresh.spec
        d.environment_key = fresh.environment_key
        d.environment_info = fresh.environment_info
        d.state = "Updating"
        d.error = None
        d.generation += 1

    updated = ctx.store.update_deployment(endpoint, name, change)
    _start_rollout(ctx, updated, all_traffic=False)
    return read(ctx, updated)


def show(ctx: Context, workspace: str, endpoint: str, name: str) -> dict[str, Any]:
    endpoints.get_for_workspace(ctx, workspace, endpoint)
    return read(ctx, ctx.store.get_deployment(endpoint, name))


def list_deployments(ctx: Context, workspace: str, endpoint: str) -> list[dict[str, Any]]:
    endpoints.get_for_workspace(ctx, workspace, endpoint)
    return [read(ctx, d) for d in ctx.store.list_deployments(endpoint)]


def delete(ctx: Context, workspace: str, endpoint: str, name: str) -> None:
    owner = endpoints.get_for_workspace(ctx, workspace, endpoint)
    deployment = ctx.store.get_deployment(endpoint, name)
    if owner.traffic.get(name):
        raise UsageError(
            f"deployment {name!r} takes {owner.traffic[name]}% of endpoint {endpoint!r}'s traffic",
            hint=f"move it first: mill online-endpoint update --name {endpoint} --traffic ...",
        )
    if owner.mirror_traffic.get(name):
        endpoints.set_traffic(ctx, endpoint, owner.traffic)  # also drops its mirror share
    ctx.store.delete_deployment(endpoint, name)
    forget(ctx, deployment)
    endpoints.publish(ctx, endpoint)


def forget(ctx: Context, deployment: OnlineDeployment) -> None:
    """Stop serving a deleted deployment: its replicas drain and stop, its files go."""
    draining = stop_replicas(ctx, deployment.endpoint, deployment.name)
    _remove_generations(ctx, deployment, keep={draining} if draining else set())


def get_logs(
    ctx: Context, workspace: str, endpoint: str, name: str, lines: int = 200
) -> dict[str, Any]:
    """The last lines of the deployment's replica logs (newest generation), and the
    environment build log when there is one."""
    endpoints.get_for_workspace(ctx, workspace, endpoint)
    deployment = ctx.store.get_deployment(endpoint, name)
    folder = _folder(ctx, deployment)
    logs: dict[str, str] = {}
    for path in sorted(folder.glob("replica-*.log")):
        logs[path.name] = log_excerpt(path, lines)
    build = folder / "build.log"
    if build.is_file():
        logs[build.name] = log_excerpt(build, lines)
    return {
        "endpoint": endpoint,
        "deployment": name,
        "generation": deployment.generation,
        "logs": logs,
    }


def stop_replicas(ctx: Context, endpoint: str, name: str) -> int | None:
    """Take the deployment's replicas out of service (they stop after draining); the
    generation retired, or None when none was running."""
    plane = ctx.serving
    if plane is None:
        return None
    with plane.lock:
        replica_set = plane.active.pop((endpoint, name), None)
    if replica_set is None:
        return None
    plane.supervisor.retire(replica_set, drain_s=replica_set.drain_s)
    return replica_set.generation


def recover(ctx: Context) -> None:
    """After a (re)start: bring every deployment that should serve back up."""
    for deployment in ctx.store.list_deployments():
        if deployment.state == "Failed":
            continue
        _start_rollout(ctx, deployment, all_traffic=False)


def read(ctx: Context, deployment: OnlineDeployment) -> dict[str, Any]:
    spec = deployment.spec
    result: dict[str, Any] = {
        "name": deployment.name,
        "endpoint_name": deployment.endpoint,
        "kind": deployment.kind,
        "provisioning_state": deployment.state,
        "generation": deployment.generation,
        "model": spec.get("model"),
        "code_configuration": spec.get("code_configuration"),
        "environment": deployment.environment_info.get("reference"),
        "environment_key": deployment.environment_key,
        "instance_type": spec.get("instance_type"),
        "instance_count": spec.get("instance_count", 1),
        "request_settings": spec.get("request_settings"),
        "liveness_probe": spec.get("liveness_probe"),
        "readiness_probe": spec.get("readiness_probe"),
        "scale_settings": spec.get("scale_settings"),
        "data_collector": spec.get("data_collector"),
        "environment_variables": spec.get("environment_variables") or {},
        "description": spec.get("description"),
        "tags": spec.get("tags") or {},
        "created_at": deployment.created_at,
        "updated_at": deployment.updated_at,
    }
    if deployment.error:
        result["error"] = deployment.error
    plane = ctx.serving
    if plane is not None:
        replica_set = plane.active.get((deployment.endpoint, deployment.name))
        if replica_set is not None:
            result["replicas"] = replica_set.describe()
            result["current_instances"] = len(replica_set.serving)
    return result


# Preparing ------------------------------------------------------------------------
def _prepare(ctx: Context, workspace: str, endpoint: str, body: dict[str, Any]) -> OnlineDeployment:
    """Validate the body against everything it refers to; nothing is started here."""
    spec = specs.parse_online_deployment(body)
    if spec.endpoint_name and spec.endpoint_name != endpoint:
        raise SpecError.one(
            "the deployment names another endpoint",
            field="endpoint_name",
            value=spec.endpoint_name,
            allowed=endpoint,
        )
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["endpoint_name"] = endpoint
    model_type, model_uri, model_ref = _model(ctx, workspace, spec.model)
    model_path = resolve_uri(ctx, workspace, model_uri) if model_uri else None
    if model_path is not None and not model_path.exists():
        raise SpecError.one(
            "the model's files are not there",
            field="model",
            value=model_uri,
            allowed="a registered model or an uploaded path",
        )
    kind = model_plans.deployment_kind(model_type, model_path, spec.code_configuration is not None)
    if model_path is not None and kind != "code":
        model_plans.replica_model_fields(kind, model_path)  # raises for what cannot be served
    if spec.code_configuration is not None:
        code = str(spec.code_configuration.code)
        if specs.classify_path(code) != "snapshot":
            raise SpecError.one(
                "a deployment's code must be uploaded before it is sent (the CLI does this)",
                field="code_configuration.code",
                value=code,
                allowed="snapshot:<sha256>",
            )
        files = {f["path"] for f in snapshot_files(ctx, workspace, code.split(":", 1)[1])}
        script = spec.code_configuration.scoring_script
        if script not in files:
            raise SpecError.one(
                "the scoring script is not in the code folder",
                field="code_configuration.scoring_script",
                value=script,
                allowed=", ".join(sorted(f for f in files if f.endswith(".py"))[:20]) or "none",
            )
    secrets.check_references(ctx, workspace, data.get("environment_variables") or {})
    environment = _environment(ctx, workspace, kind, data.get("environment"), model_path)
    data["model"] = model_ref
    data["model_type"] = model_type
    data["model_uri"] = model_uri
    return OnlineDeployment(
        endpoint=endpoint,
        name=spec.name,
        kind=kind,
        spec=data,
        state="Creating",
        environment_key=environment.get("key"),
        environment_info=environment,
    )


def _model(ctx: Context, workspace: str, model: Any) -> tuple[str | None, str | None, Any]:
    """(type, files URI, what to show) of the deployment's model; (None, None, None) without."""
    if model is None:
        return None, None, None
    if isinstance(model, str):
        reference = model
        name, version, label = _parse_model_reference(reference)
        found = models.resolve(ctx, workspace, name, version, label)
        return found.type, found.path, f"azureml:{found.name}:{found.version}"
    inline = model if isinstance(model, dict) else model.model_dump(exclude_none=True)
    path = inline.get("path")
    if not path and inline.get("name"):
        found = models.resolve(ctx, workspace, inline["name"], inline.get("version"), None)
        return found.type, found.path, f"azureml:{found.name}:{found.version}"
    if not path or specs.parse_datastore_uri(str(path)) is None:
        raise SpecError.one(
            "a deployment's local model must be uploaded before it is sent (the CLI does this)",
            field="model.path",
            value=path,
            allowed="azureml://datastores/<name>/paths/<path>",
        )
    return str(inline.get("type") or "custom_model"), str(path), inline


def _parse_model_reference(reference: str) -> tuple[str, str | None, str | None]:
    text = reference.removeprefix("azureml:")
    if "@" in text:
        name, label = text.split("@", 1)
        return name, None, label
    if ":" in text:
        name, version = text.split(":", 1)
        return name, version, None
    raise SpecError.one(
        "a model reference needs a version or a label",
        field="model",
        value=reference,
        allowed="azureml:<name>:<version> or azureml:<name>@latest",
    )


def _environment(
    ctx: Context, workspace: str, kind: str, given: Any, model_path: Path | None
) -> dict[str, Any]:
    """The environment to build: the one given, else what the no-code model needs."""
    if given is not None:
        return environments.resolve_for_job(ctx, workspace, given)
    python = f"python={sys.version_info.major}.{sys.version_info.minor}"
    if kind == "mlflow" and model_path is not None:
        conda = _mlflow_conda(model_path)
        return environments.resolve_for_job(ctx, workspace, {"conda_file": conda})
    packages = _NO_CODE_PACKAGES.get(kind)
    if packages is None:
        return environments.resolve_for_job(ctx, workspace, None)
    conda = {"name": f"mill-{kind}", "dependencies": [python, "pip", {"pip": packages}]}
    return environments.resolve_for_job(ctx, workspace, {"conda_file": conda})


def _mlflow_conda(model_path: Path) -> dict[str, Any]:
    import yaml

    conda_file = model_path / "conda.yaml"
    if not conda_file.is_file():
        raise SpecError.one(
            "the MLflow model has no conda.yaml to build its environment from",
            field="model",
            value=model_path.name,
            allowed="an MLflow model folder with conda.yaml, or give an environment",
        )
    conda = yaml.safe_load(conda_file.read_text(encoding="utf-8")) or {}
    if not isinstance(conda, dict):
        raise SpecError.one(
            "the MLflow model's conda.yaml is not a mapping", field="model", value=model_path.name
        )
    return conda


# Rolling out ----------------------------------------------------------------------
def _start_rollout(ctx: Context, deployment: OnlineDeployment, *, all_traffic: bool) -> None:
    plane = ctx.serving
    if plane is None:
        return  # no serving plane in this process (tests driving services by hand)
    plane.rollouts.submit(_rollout, ctx, deployment, all_traffic)


def _rollout(ctx: Context, deployment: OnlineDeployment, all_traffic: bool) -> None:
    plane = ctx.serving
    key = (deployment.endpoint, deployment.name)
    try:
        replica_set = _replica_set(ctx, deployment)
        plane.supervisor.launch(replica_set)
        try:
            plane.supervisor.wait_ready(replica_set, _STARTUP_TIMEOUT_S)
        except RuntimeError:
            plane.supervisor.retire(replica_set, remove_files=False)  # get-logs reads them
            raise
    except Exception as exc:  # the deployment reports it; the endpoint serves on
        reason = str(exc) if isinstance(exc, (MillError, RuntimeError)) else repr(exc)
        log.warning("deployment %s/%s failed: %s", *key, reason)
        _set_state(ctx, deployment, "Failed", reason)
        return
    with plane.lock:
        old = plane.active.get(key)
        plane.active[key] = replica_set
    if not _set_state(ctx, deployment, "Succeeded", None):
        stop_replicas(ctx, *key)  # deleted while it was starting
        return
    if all_traffic:
        endpoints.set_traffic(ctx, deployment.endpoint, {deployment.name: 100})
    else:
        endpoints.publish(ctx, deployment.endpoint)
    if old is not None:
        plane.supervisor.retire(old, drain_s=old.drain_s)
    _remove_generations(ctx, deployment, keep={deployment.generation, old.generation if old else 0})


def _set_state(ctx: Context, deployment: OnlineDeployment, state: str, error: str | None) -> bool:
    """Record the outcome unless a newer generation (or a delete) overtook this rollout."""

    def change(d: OnlineDeployment) -> None:
        if d.generation == deployment.generation:
            d.state = state
            d.error = error

    try:
        ctx.store.update_deployment(deployment.endpoint, deployment.name, change)
    except NotFoundError:
        return False
    return True


def _replica_set(ctx: Context, deployment: OnlineDeployment) -> ReplicaSet:
    spec = deployment.spec
    workspace = ctx.store.get_endpoint(deployment.endpoint).workspace
    folder = _folder(ctx, deployment)
    folder.mkdir(parents=True, exist_ok=True)
    python = _build(ctx, deployment, folder / "build.log")
    settings = spec.get("request_settings") or {}
    max_concurrent = int(settings.get("max_concurrent_requests_per_instance", 1))
    plan: dict[str, Any] = {
        "kind": deployment.kind,
        "host": "127.0.0.1",
        "max_concurrent": max_concurrent,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILL_")}
    user_env = {str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()}
    env.update(user_env)
    env.update(secrets.secret_environment(ctx, workspace, user_env))  # references → values
    model_uri = spec.get("model_uri")
    if model_uri:
        source = resolve_uri(ctx, workspace, model_uri)
        model_dir = folder / "model"
        _link(source, model_dir / source.name)
        env["AZUREML_MODEL_DIR"] = str(model_dir)
        plan["model_path"] = str(model_dir / source.name)
        if deployment.kind != "code":
            plan.update(model_plans.replica_model_fields(deployment.kind, source))
            reference = spec.get("model")
            if isinstance(reference, str):  # azureml:<name>:<version>: the v2 routes' name
                plan["model_name"], plan["model_version"] = reference.split(":")[1:3]
    code = (spec.get("code_configuration") or {}).get("code")
    if code:
        digest = str(code).split(":", 1)[1]
        code_dir = ctx.blobs(workspace).materialise(
            snapshot_files(ctx, workspace, digest), folder / "code"
        )
        plan["code_dir"] = str(code_dir)
        plan["scoring_script"] = spec["code_configuration"]["scoring_script"]
    count = int(spec.get("instance_count", 1))
    scale = _scale_policy(spec.get("scale_settings") or {}, max_concurrent)
    if scale is not None:
        count = min(scale.max_instances, max(scale.min_instances, count))
    return ReplicaSet(
        endpoint=deployment.endpoint,
        deployment=deployment.name,
        generation=deployment.generation,
        python=python,
        plan=plan,
        env=env,
        folder=folder,
        count=count,
        liveness=_probe(spec.get("liveness_probe") or {}),
        readiness=_probe(spec.get("readiness_probe") or {}),
        scale=scale,
        startup_timeout_s=_STARTUP_TIMEOUT_S,
        drain_s=int(settings.get("request_timeout_ms", 5000)) / 1000 + 1.0,
    )


def _probe(fields: dict[str, Any]) -> ProbeSettings:
    return ProbeSettings(
        initial_delay=float(fields.get("initial_delay", 10)),
        period=float(fields.get("period", 10)),
        timeout=float(fields.get("timeout", 2)),
        failure_threshold=int(fields.get("failure_threshold", 30)),
        success_threshold=int(fields.get("success_threshold", 1)),
    )


def _scale_policy(fields: dict[str, Any], max_concurrent: int) -> ScalePolicy | None:
    if fields.get("type") != "target_utilization":
        return None
    return ScalePolicy(
        min_instances=int(fields.get("min_instances") or 1),
        max_instances=int(fields.get("max_instances") or fields.get("min_instances") or 1),
        polling_interval=float(fields.get("polling_interval") or 1),
        target_utilization=float(fields.get("target_utilization_percentage") or 70),
        max_concurrent=max_concurrent,
    )


def _build(ctx: Context, deployment: OnlineDeployment, log_path: Path) -> str:
    info = deployment.environment_info or {}
    if not info.get("resolved"):
        return sys.executable  # no environment: the host's interpreter (its note says so)
    from mill import envs

    resolved = envs.ResolvedEnvironment.model_validate(info["resolved"])
    with log_path.open("a", encoding="utf-8") as out:

        def write(line: str) -> None:
            out.write(line.rstrip("\n") + "\n")
            out.flush()

        write(f"Environment {info.get('key')} for deployment {deployment.name}")
        built = building.builder(ctx).build(resolved, log=write)
        write(
            "Using the cached environment" if built.cache_hit else f"Built in {built.seconds:.1f} s"
        )
    return str(built.python)


def _remove_generations(ctx: Context, deployment: OnlineDeployment, keep: set[int]) -> None:
    """Delete the folders of the deployment's generations that nothing runs from."""
    root = ctx.settings.endpoints_root / deployment.endpoint / deployment.name
    for folder in root.glob("g*"):
        if folder.name[1:].isdigit() and int(folder.name[1:]) not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def _folder(ctx: Context, deployment: OnlineDeployment) -> Path:
    return (
        ctx.settings.endpoints_root
        / deployment.endpoint
        / deployment.name
        / f"g{deployment.generation}"
    )


def _link(source: Path, target: Path) -> None:
    """The model under ``AZUREML_MODEL_DIR`` as Azure lays it out (a folder model as
    ``<dir>/<folder>/``, a file directly in it). Registry and upload copies are immutable,
    so a symbolic link is enough."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        return
    target.symlink_to(source, target_is_directory=source.is_dir())
