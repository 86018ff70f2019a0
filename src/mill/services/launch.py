"""Turn a queued job into a launch plan: where its code, inputs and outputs live, what runs.

The plan is all the job bootstrap needs (see ``mill/runtime/bootstrap.py``); the bootstrap
decides nothing itself, so every path rule lives here, on the control plane.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mill import specs
from mill.compute.distribution import process_plan
from mill.domain.entities import Job
from mill.errors import NotSupportedError, SpecError
from mill.hashing import content_hash
from mill.services import secrets as secrets_service
from mill.services import staging
from mill.services.context import Context
from mill.services.uploads import snapshot_files
from mill.services.workspaces import DEFAULT_DATASTORE
from mill.storage.datastores import local_path

__all__ = ["ARTIFACTS", "artifacts_dir", "build_plan", "output_path", "resolve_uri"]

ARTIFACTS = "artifacts"
CANCEL_GRACE_SECONDS = 5.0


def artifacts_dir(ctx: Context, job: Job) -> Path:
    return resolve_uri(ctx, job.workspace, default_output_uri(job.name, ARTIFACTS))


def default_output_uri(job_name: str, output: str) -> str:
    return f"azureml://datastores/{DEFAULT_DATASTORE}/paths/azureml/{job_name}/{output}/"


def resolve_uri(ctx: Context, workspace: str, uri: str) -> Path:
    """The local path behind an ``azureml://datastores/...`` URI."""
    parsed = specs.parse_datastore_uri(uri)
    if parsed is None:
        raise NotSupportedError(f"{uri!r} is not on a datastore this version can read")
    name, relative = parsed
    return local_path(ctx.store.get_datastore(workspace, name), relative)


def output_path(ctx: Context, job: Job, output: str) -> Path:
    """Where a job's output lives (the default ``artifacts`` output included)."""
    if output == ARTIFACTS:
        return artifacts_dir(ctx, job)
    outputs = job.spec.get("outputs") or {}
    if output not in outputs:
        known = ", ".join([ARTIFACTS, *outputs])
        raise SpecError.one(
            f"job {job.name!r} has no output {output!r}",
            field="output_name",
            value=output,
            allowed=known,
        )
    spec = outputs[output]
    if spec.get("mode") == "direct":
        raise NotSupportedError(f"output {output!r} uses mode direct; Mill does not hold its files")
    return resolve_uri(ctx, job.workspace, spec["path"])


def build_plan(ctx: Context, job: Job, token: str, python: str | None = None) -> dict[str, Any]:
    """The launch plan; ``python`` is the job environment's interpreter (default: ours)."""
    spec = job.spec
    run_dir = ctx.run_dir(job.workspace, job.name)
    if run_dir.exists():  # a relaunch after a crash between launch and the first event
        shutil.rmtree(run_dir)
    working_dir = run_dir / "wd"
    artifacts = artifacts_dir(ctx, job)
    inputs_plan, input_values = _inputs(ctx, job, run_dir)
    outputs_plan, output_values = _outputs(ctx, job, run_dir, artifacts)
    command = specs.render_command(
        spec["command"], inputs=input_values, outputs=output_values, name=job.name
    )
    resources = spec.get("resources") or {}
    interpreter = Path(python or sys.executable)
    env = {str(k): str(v) for k, v in (spec.get("environment_variables") or {}).items()}
    # ${{secrets.x}} values go to the runner beside the plan, never into launch.json.
    secret_env = secrets_service.secret_environment(ctx, job.workspace, env)
    env = {k: v for k, v in env.items() if k not in secret_env}
    env.update(
        {
            "PATH": f"{interpreter.parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "AZUREML_RUN_ID": job.name,
            "AZUREML_JOB_NAME": job.name,
            "AZUREML_EXPERIMENT_NAME": job.experiment_name,
            "AZUREML_WORKSPACE_NAME": job.workspace,
            "MILL_JOB_NAME": job.name,
            "MILL_WORKSPACE": job.workspace,
            # mlflow.log_* in user code lands in the job's run.
            "MLFLOW_RUN_ID": job.name,
            "MLFLOW_EXPERIMENT_ID": ctx.tracking.ensure_experiment(
                job.workspace, job.experiment_name
            ),
            # The job's own token: a token-protected server accepts it for MLflow calls.
            "MLFLOW_TRACKING_TOKEN": token,
        }
    )
    if ctx.server_url:
        env["MLFLOW_TRACKING_URI"] = f"{ctx.server_url}/workspaces/{job.workspace}"
    return {
        "version": 1,
        "job_id": str(job.id),
        "job_name": job.name,
        "callback": {
            "base_url": ctx.server_url,
            "path": f"/api/v1/runtime/jobs/{job.id}/events",
            "token": token,
            "server_file": str(ctx.settings.server_file),
        }
        if ctx.server_url
        else None,
        "run_dir": str(run_dir),
        "working_dir": str(working_dir),
        "code": _code(ctx, job),
        "inputs": inputs_plan,
        "outputs": outputs_plan,
        "artifacts_dir": str(artifacts),
        "command": command,
        "shell": shutil.which("bash") or "/bin/sh",
        "env": env,
        "secret_env": secret_env,  # the runner passes these in the process environment
        "processes": process_plan(
            spec.get("distribution"), int(resources.get("instance_count") or 1), _free_port()
        ),
        "timeout_seconds": (spec.get("limits") or {}).get("timeout"),
        "cancel_grace_seconds": CANCEL_GRACE_SECONDS,
    }


def new_token() -> tuple[str, str]:
    """A job's callback token and the hash the store keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, content_hash(token.encode())


def _code(ctx: Context, job: Job) -> dict[str, Any] | None:
    if not job.snapshot_id:
        return None
    return {
        "blobs_dir": str(ctx.blobs(job.workspace).root),
        "files": snapshot_files(ctx, job.workspace, job.snapshot_id),
    }


def _inputs(
    ctx: Context, job: Job, run_dir: Path
) -> tuple[list[dict[str, Any]], dict[str, str | None]]:
    plan: list[dict[str, Any]] = []
    values: dict[str, str | None] = {}
    for name, spec in (job.spec.get("inputs") or {}).items():
        if spec["type"] in specs.LITERAL_INPUT_TYPES:
            value = spec.get("value")
            values[name] = None if value is None else _literal(value)
            continue
        path = spec.get("path")
        if path is None:
            values[name] = None  # an optional input left out: its $[[...]] fragment is dropped
            continue
        mode = spec.get("mode") or "ro_mount"
        if mode == "direct":
            values[name] = path
            continue
        kind = specs.classify_path(path)
        if kind in ("datastore", "cloud") and staging.is_remote(ctx, job.workspace, path):
            staged = staging.fetch_input(ctx, job.workspace, name, path, mode, run_dir)
            plan.append({"name": name, "action": "none", "source": path, "target": str(staged)})
            values[name] = str(staged)
        elif kind == "datastore":
            source = resolve_uri(ctx, job.workspace, path)
            if mode in ("download", "eval_download"):
                target = run_dir / "inputs" / name / source.name
                plan.append(
                    {"name": name, "action": "copy", "source": str(source), "target": str(target)}
                )
                values[name] = str(target)
            else:  # ro_mount on a local datastore: the job reads the datastore's own files
                plan.append(
                    {"name": name, "action": "none", "source": str(source), "target": str(source)}
                )
                values[name] = str(source)
        elif kind == "http":
            filename = Path(urlsplit(path).path).name or "download"
            target = run_dir / "inputs" / name / filename
            plan.append(
                {"name": name, "action": "download_url", "source": path, "target": str(target)}
            )
            values[name] = str(target)
        else:  # checked at submit; kept as a guard for jobs stored by an older version
            raise NotSupportedError(f"input {name!r}: cannot materialise {path!r} here")
    return plan, values


def _outputs(
    ctx: Context, job: Job, run_dir: Path, artifacts: Path
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    plan: list[dict[str, Any]] = []
    values: dict[str, str] = {ARTIFACTS: str(artifacts)}
    for name, spec in (job.spec.get("outputs") or {}).items():
        if name == ARTIFACTS:
            continue
        if spec.get("mode") == "direct":
            values[name] = spec["path"]
            continue
        kind = "uri_file" if spec.get("type") == "uri_file" else "uri_folder"
        if staging.is_remote(ctx, job.workspace, spec["path"]):
            # Written locally; the control plane uploads it when the job ends.
            local = destination = staging.local_output(run_dir, name, spec)
        elif spec.get("mode") == "upload":
            destination = resolve_uri(ctx, job.workspace, spec["path"])
            local = run_dir / "outputs" / name
            if kind == "uri_file":
                local = local / destination.name
        else:
            local = destination = resolve_uri(ctx, job.workspace, spec["path"])
        plan.append(
            {
                "name": name,
                "type": kind,
                "mode": spec.get("mode") or "rw_mount",
                "local_path": str(local),
                "destination": str(destination),
            }
        )
        values[name] = str(local)
    return plan, values


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
