"""Jobs: submit, read, list, cancel, archive, and what their processes report."""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mill import specs
from mill.compute.base import ProcessHandle
from mill.domain.entities import Job, StatusChange
from mill.domain.names import generate_job_name, is_valid_name
from mill.domain.status import TERMINAL, JobStatus
from mill.errors import (
    AuthError,
    ConflictError,
    MillError,
    NotFoundError,
    SpecError,
    SpecIssue,
    UsageError,
)
from mill.hashing import content_hash
from mill.services import (
    computes,
    data,
    datastores,
    environments,
    models,
    runs,
    secrets,
    staging,
)
from mill.services.context import Context
from mill.services.formats import iso
from mill.services.launch import ARTIFACTS, artifacts_dir, default_output_uri, resolve_uri
from mill.storage.filesystems import DatastoreFS
from mill.store.sql import JobQuery

__all__ = [
    "apply_event",
    "archive",
    "cancel",
    "create",
    "finish_from_result",
    "list_jobs",
    "log_path",
    "read",
    "remote_output",
    "settle",
    "show",
]

log = logging.getLogger(__name__)

_SNAPSHOT_PREFIX = "snapshot:"
_DEFAULT_EXPERIMENT = "Default"


def create(
    ctx: Context, workspace: str, body: dict[str, Any], *, validate_only: bool = False
) -> dict[str, Any]:
    """Validate a job spec (as the CLI or SDK sends it) and queue it."""
    ctx.store.get_workspace(workspace)
    spec = specs.parse_command_job(body, default_experiment=_DEFAULT_EXPERIMENT)
    name = spec.name or generate_job_name()
    if not is_valid_name(name):
        raise SpecError.one(
            "invalid job name",
            field="name",
            value=name,
            allowed="letters, digits, '-' and '_', starting with a letter or digit, at most 255",
        )
    try:
        compute = computes.resolve(ctx, workspace, spec.compute)
    except NotFoundError as exc:
        raise SpecError.one(
            exc.message.split(";")[0],
            field="compute",
            value=spec.compute,
            allowed=", ".join(exc.details.get("known", [])),
            hint=exc.hint,
        ) from exc
    instances = spec.resources.instance_count
    if instances > compute.max_instances:
        raise SpecError.one(
            f"compute {compute.name!r} has max_instances {compute.max_instances}",
            field="resources.instance_count",
            value=instances,
            allowed=f"at most {compute.max_instances}",
        )
    environment = environments.resolve_for_job(ctx, workspace, spec.environment)
    data = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    data["name"] = name
    snapshot_id = _check_code(ctx, workspace, data.get("code"))
    _check_inputs(ctx, workspace, data.get("inputs") or {})
    secrets.check_references(ctx, workspace, data.get("environment_variables") or {})
    data["outputs"] = _resolve_outputs(ctx, workspace, name, data.get("outputs") or {})
    job = Job(
        workspace=workspace,
        name=name,
        type="command",
        spec=data,
        compute=compute.name,
        experiment_name=spec.experiment_name or _DEFAULT_EXPERIMENT,
        display_name=spec.display_name or name,
        description=spec.description,
        tags=dict(spec.tags),
        properties=dict(spec.properties),
        slots=instances,
        snapshot_id=snapshot_id,
        created_at=time.time(),
        environment_key=environment.get("key"),
        environment_info=environment,
    )
    job.history = [StatusChange(JobStatus.NOT_STARTED, job.created_at)]
    if validate_only:
        return read(ctx, job)
    if not ctx.store.has_job(workspace, name):  # the same workspace: insert_job says so
        runs.check_run_id_free(ctx, name)
    stored = ctx.store.insert_job(job)
    runs.start_run(ctx, stored)
    ctx.wakeup.set()
    return read(ctx, stored)


def show(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    """A job with its run's latest metrics and its params (what `job show` prints)."""
    data = read(ctx, ctx.store.get_job(workspace, name))
    data["metrics"] = {
        k: (None if v != v else v)  # NaN is not JSON
        for k, v in ctx.tracking.latest_metrics(name).items()
    }
    data["params"] = ctx.tracking.params(name)
    data["models"] = models.models_of_job(ctx, workspace, name)  # registered from its outputs
    return data


def list_jobs(ctx: Context, workspace: str, query: JobQuery) -> list[dict[str, Any]]:
    return [read(ctx, j) for j in ctx.store.list_jobs(workspace, query)]


def archive(ctx: Context, workspace: str, name: str, archived: bool = True) -> dict[str, Any]:
    job = ctx.store.get_job(workspace, name)

    def change(j: Job) -> bool:
        j.archived = archived
        return True

    ctx.store.update_job(job.stored_id, change)
    return show(ctx, workspace, name)


def cancel(ctx: Context, workspace: str, name: str) -> dict[str, Any]:
    """Cancel a job: a queued one at once; a running one by stopping its whole process tree."""
    job = ctx.store.get_job(workspace, name)
    if job.status in TERMINAL:
        raise ConflictError(
            f"job {name!r} has already ended ({job.status.value}); nothing to cancel"
        )
    if job.status in (JobStatus.NOT_STARTED, JobStatus.QUEUED) or not job.handle:
        settle(
            ctx,
            job.stored_id,
            JobStatus.CANCELED,
            error={"code": "Canceled", "message": "canceled by user before it started"},
        )
    else:
        ctx.runner.terminate(ProcessHandle.from_dict(job.handle), grace=5.0)
        finish_from_result(ctx, job, JobStatus.CANCELED, "canceled by user")
    ctx.wakeup.set()
    return show(ctx, workspace, name)


def apply_event(ctx: Context, job_id: int, token: str, event: dict[str, Any]) -> None:
    """A status report from a job's bootstrap process."""
    job = ctx.store.get_job_by_id(job_id)
    expected = job.callback_token_hash or ""
    if not expected or not hmac.compare_digest(expected, content_hash(token.encode())):
        raise AuthError("wrong or missing job token")
    try:
        status = JobStatus(str(event.get("status")))
    except ValueError as exc:
        raise UsageError(f"unknown job status {event.get('status')!r}") from exc
    if status in (JobStatus.NOT_STARTED, JobStatus.QUEUED):
        raise UsageError(f"a job process cannot report status {status.value}")
    _apply_status(ctx, job, status, event)


def settle(
    ctx: Context, job_id: int, status: JobStatus, at: float | None = None, **fields: Any
) -> Job | None:
    """Move a job to a later status; when that ends it, end its MLflow run and free its slots."""
    moved = ctx.store.transition(job_id, status, at, **fields)
    if moved is not None and status in TERMINAL:
        runs.end_run(ctx, moved)
        ctx.wakeup.set()
    return moved


def finish_from_result(ctx: Context, job: Job, fallback: JobStatus, reason: str) -> None:
    """Settle a job whose process is gone: from its result.json, else with ``fallback``."""
    result = _read_result(job)
    if result is not None:
        try:
            status = JobStatus(result.get("status"))
        except ValueError:
            status = JobStatus.FAILED
        if status in TERMINAL:
            _apply_status(ctx, job, status, result)
            return
    settle(
        ctx,
        job.stored_id,
        fallback,
        error={
            "code": "Canceled" if fallback == JobStatus.CANCELED else "SystemError",
            "message": reason,
        },
    )


def read(ctx: Context, job: Job) -> dict[str, Any]:
    """The job as ``az ml job show`` prints it, plus Mill's own fields beside."""
    spec = job.spec
    outputs = {
        ARTIFACTS: {
            "type": "uri_folder",
            "mode": "rw_mount",
            "path": default_output_uri(job.name, ARTIFACTS),
        },
        **(spec.get("outputs") or {}),
    }
    duration = None
    if job.started_at is not None:
        duration = round((job.ended_at or time.time()) - job.started_at, 3)
    data: dict[str, Any] = {
        "name": job.name,
        "display_name": job.display_name,
        "type": job.type,
        "status": job.status.value,
        "experiment_name": job.experiment_name,
        "description": job.description,
        "tags": job.tags,
        "properties": job.properties,
        "command": spec.get("command"),
        "code": spec.get("code"),
        "compute": job.compute,
        "inputs": spec.get("inputs") or {},
        "outputs": outputs,
        "environment": spec.get("environment"),
        "environment_variables": spec.get("environment_variables") or {},
        "resources": spec.get("resources") or {"instance_count": 1},
        "distribution": spec.get("distribution"),
        "limits": spec.get("limits") or {},
        "parent_job_name": None,
        "creation_context": {"created_at": iso(job.created_at)},
        # Mill's own fields
        **_environment_fields(job),
        "start_time": iso(job.started_at),
        "end_time": iso(job.ended_at),
        "duration_seconds": duration,
        "status_history": [{"status": h.status.value, "time": iso(h.at)} for h in job.history],
        "exit_code": job.exit_code,
        "error": job.error,
        "archived": job.archived,
    }
    if job.handle:
        data["pid"] = job.handle.get("pid")
    return data


def remote_output(ctx: Context, job: Job, output: str) -> tuple[DatastoreFS, str] | None:
    """A job output's filesystem and path when it lives on remote storage, else None."""
    spec = (job.spec.get("outputs") or {}).get(output)
    if not spec or spec.get("mode") == "direct" or not spec.get("path"):
        return None
    if not staging.is_remote(ctx, job.workspace, spec["path"]):
        return None
    return datastores.locate(ctx, job.workspace, spec["path"])


def log_path(ctx: Context, job: Job, file: str) -> Path:
    """A log file of the job, by its path in the job's artifacts (``user_logs/std_log.txt``)."""
    parts = [p for p in file.split("/") if p]
    if not parts or any(p in (".", "..") for p in parts) or file.startswith("/"):
        raise UsageError(f"log file {file!r} must be a relative path inside the job's artifacts")
    return artifacts_dir(ctx, job).joinpath(*parts)


def _apply_status(ctx: Context, job: Job, status: JobStatus, event: dict[str, Any]) -> None:
    fields: dict[str, Any] = {}
    at = event.get("at")
    when = float(at) if isinstance(at, (int, float)) else None
    if status in TERMINAL:
        fields["exit_code"] = event.get("exit_code")
        reason = event.get("reason")
        if status == JobStatus.FAILED:
            fields["error"] = {"code": "UserError", "message": reason or "the job failed"}
        elif status == JobStatus.CANCELED:
            fields["error"] = {"code": "Canceled", "message": reason or "canceled"}
        if status != JobStatus.CANCELED and _has_outputs_to_publish(ctx, job):
            with ctx.finalizing_lock:
                if job.stored_id in ctx.finalizing:
                    return  # already being published; that thread settles the job
                ctx.finalizing.add(job.stored_id)
            ctx.background.submit(_publish_then_settle, ctx, job, status, when, fields)
            return
    settle(ctx, job.stored_id, status, when, **fields)


def _has_outputs_to_publish(ctx: Context, job: Job) -> bool:
    for spec in (job.spec.get("outputs") or {}).values():
        if spec.get("mode") == "direct":
            continue
        if spec.get("name") or staging.is_remote(ctx, job.workspace, spec["path"]):
            return True
    return False


def _publish_then_settle(
    ctx: Context, job: Job, status: JobStatus, when: float | None, fields: dict[str, Any]
) -> None:
    """Upload remote outputs and register named ones, then end the job (Finalizing until)."""
    try:
        try:
            problems = staging.publish_outputs(ctx, job)
            if status == JobStatus.COMPLETED and not problems:
                problems += staging.register_outputs(ctx, job)
        except Exception as exc:  # never leave a job in Finalizing
            log.exception("publishing the outputs of job %s failed", job.name)
            problems = [f"publishing the outputs failed: {exc}"]
        if problems:
            message = "; ".join(problems)
            log.warning("job %s: %s", job.name, message)
            if status == JobStatus.COMPLETED:
                status = JobStatus.FAILED
                fields["error"] = {"code": "SystemError", "message": message}
            else:
                error = dict(fields.get("error") or {})
                error["message"] = f"{error.get('message', 'the job failed')}; {message}"
                fields["error"] = error
        settle(ctx, job.stored_id, status, when, **fields)
    finally:
        with ctx.finalizing_lock:
            ctx.finalizing.discard(job.stored_id)


def _read_result(job: Job) -> dict[str, Any] | None:
    if not job.run_dir:
        return None
    try:
        data = json.loads((Path(job.run_dir) / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_code(ctx: Context, workspace: str, code: str | None) -> str | None:
    if code is None:
        return None
    if not code.startswith(_SNAPSHOT_PREFIX):
        raise SpecError.one(
            "local code must be uploaded before the job is submitted (the CLI and SDK do this)",
            field="code",
            value=code,
            allowed="snapshot:<sha256> from POST /api/v1/workspaces/<ws>/snapshots",
        )
    digest = code[len(_SNAPSHOT_PREFIX) :]
    if not ctx.store.has_snapshot(workspace, digest):
        raise SpecError.one("unknown code snapshot", field="code", value=code)
    return digest


def _check_inputs(ctx: Context, workspace: str, inputs: dict[str, Any]) -> None:
    """Check each data input's path; asset and job-output references become storage URIs."""
    issues: list[SpecIssue] = []
    for name, spec in inputs.items():
        path = spec.get("path")
        if spec["type"] in specs.LITERAL_INPUT_TYPES or path is None:
            continue
        field = f"inputs.{name}.path"
        try:
            _check_input(ctx, workspace, name, spec)
        except SpecError as exc:
            issues.extend(replace(i, field=i.field or field) for i in exc.issues)
        except MillError as exc:  # unknown datastore or asset, unreachable storage...
            issues.append(SpecIssue(exc.message, field=field, value=path, has_value=True))
    if issues:
        raise SpecError(issues)


def _check_input(ctx: Context, workspace: str, name: str, spec: dict[str, Any]) -> None:
    path = str(spec["path"])
    field = f"inputs.{name}.path"
    kind = specs.classify_path(path)
    mode = spec.get("mode") or "ro_mount"
    if kind == "asset":
        asset = data.resolve_reference(ctx, workspace, path)
        if not _input_accepts(spec["type"], asset.type):
            raise SpecError.one(
                f"data asset {asset.name}:{asset.version} is a {asset.type}",
                field=f"inputs.{name}.type",
                value=spec["type"],
                allowed=asset.type,
            )
        spec["asset"] = f"azureml:{asset.name}:{asset.version}"  # @latest, pinned at submit
        spec["path"] = path = asset.path
        kind = specs.classify_path(path)
    elif kind == "job_output":
        spec["path"] = path = data.job_output_uri(ctx, workspace, path)
        kind = specs.classify_path(path)
    if kind == "http":
        if spec["type"] == "uri_folder" and mode != "direct":
            raise SpecError.one(
                "a folder cannot be fetched over http(s); use a uri_file input or mode: direct",
                field=field,
                value=path,
            )
    elif kind == "local":
        raise SpecError.one(
            "local data must be uploaded before the job is submitted (the CLI does this)",
            field=field,
            value=path,
        )
    elif kind in ("datastore", "cloud") and mode != "direct":
        data.require_kind(
            ctx, workspace, path, spec["type"], field=field, type_field=f"inputs.{name}.type"
        )
    elif kind not in ("datastore", "cloud") and mode != "direct":
        raise SpecError.one(
            "this kind of path cannot be read; use a local path, a data asset, "
            "azureml://datastores/<name>/paths/<path>, a storage URI or an http(s) URL",
            field=field,
            value=path,
        )


def _input_accepts(input_type: str, asset_type: str) -> bool:
    """A uri_folder input reads any folder asset (an mltable is a folder too)."""
    return input_type == asset_type or (input_type == "uri_folder" and asset_type == "mltable")


def _resolve_outputs(
    ctx: Context, workspace: str, job_name: str, outputs: dict[str, Any]
) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    issues: list[SpecIssue] = []
    for name, spec in outputs.items():
        out = dict(spec)
        out.setdefault("type", "uri_folder")
        if out.get("mode") == "mount":
            out["mode"] = "rw_mount"
        out.setdefault("mode", "rw_mount")
        path = out.get("path")
        if name == ARTIFACTS:
            out["path"] = default_output_uri(job_name, ARTIFACTS)
        elif path is None:
            out["path"] = default_output_uri(job_name, name)
            if out["type"] == "uri_file":
                out["path"] += name
        else:
            path = path.replace("${{name}}", job_name).replace(
                "${{default_datastore}}", "workspaceblobstore"
            )
            out["path"] = path
            if out["mode"] != "direct":
                try:
                    _check_output_path(ctx, workspace, path)
                except MillError as exc:  # unknown datastore, escaping path, not a datastore URI
                    issues.append(
                        SpecIssue(
                            exc.message, field=f"outputs.{name}.path", value=path, has_value=True
                        )
                    )
        resolved[name] = out
    if issues:
        raise SpecError(issues)
    return resolved


def _check_output_path(ctx: Context, workspace: str, path: str) -> None:
    parsed = specs.parse_datastore_uri(path)
    if parsed is None:
        raise UsageError(
            f"{path!r} is not on a datastore; outputs are written to "
            "azureml://datastores/<name>/paths/<path>"
        )
    datastore = ctx.store.get_datastore(workspace, parsed[0])
    if datastore.type == "local":
        resolve_uri(ctx, workspace, path)  # refuses paths that escape the datastore
    else:
        datastores.open_fs(ctx, workspace, parsed[0]).native_uri(parsed[1])  # refuses "..", offline


def _environment_fields(job: Job) -> dict[str, Any]:
    info = job.environment_info or {}
    build = info.get("build") or {}
    if info.get("kind") == "virtualenv":
        status = "cache hit" if build.get("cache_hit") else ("built" if build else "not built yet")
    elif info.get("kind") == "user_managed":
        status = "user-managed interpreter"
    else:
        status = "host interpreter"
    return {
        "environment_key": job.environment_key,
        "environment_status": status,
        "environment_build_seconds": build.get("seconds"),
        "environment_python": build.get("python"),
        "environment_notes": info.get("notes") or [],
    }
