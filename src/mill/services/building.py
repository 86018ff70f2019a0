"""Building a job's environment before it starts, with the log kept beside the job's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mill import envs
from mill.domain.entities import Job
from mill.errors import UsageError
from mill.services import environments
from mill.services.context import Context
from mill.services.launch import artifacts_dir

__all__ = ["BUILD_LOG", "build_asset", "build_for_job", "builder"]

BUILD_LOG = "azureml-logs/20_image_build_log.txt"


def builder(ctx: Context) -> envs.UvEnvironmentBuilder:
    return envs.UvEnvironmentBuilder(ctx.settings.environments_root)


def build_asset(
    ctx: Context,
    workspace: str,
    name: str,
    version: str | None,
    label: str | None,
    builder_name: str = "uv",
) -> dict[str, Any]:
    """Build a registered environment now (or find it cached), so jobs using it start at once.

    ``docker`` builds a real image from the same spec where a container engine runs.
    """
    if builder_name not in ("uv", "docker"):
        raise UsageError(f"unknown builder {builder_name!r}; allowed: uv, docker")
    found_version, spec = environments.resolve_asset(ctx, workspace, name, version, label)
    lines: list[str] = []
    result: dict[str, Any] = {"name": name, "version": found_version}
    if builder_name == "docker":
        image = envs.DockerImageBuilder().build(spec, log=lines.append)
        result.update(
            key=image.key, builder="docker", image=image.tag, seconds=round(image.seconds, 3)
        )
    else:
        built = builder(ctx).build(spec, log=lines.append)
        result.update(
            key=built.key,
            cache_hit=built.cache_hit,
            seconds=round(built.seconds, 3),
            python=str(built.python),
            reason=built.reason,
        )
    result["log"] = lines[-200:]
    return result


def build_for_job(ctx: Context, job: Job) -> str:
    """Build (or find cached) the job's environment; returns its Python interpreter.

    The build log goes to the job's ``azureml-logs/20_image_build_log.txt``; what was built,
    from cache or not and how long it took are recorded on the job.
    """
    info = job.environment_info or {}
    resolved = envs.ResolvedEnvironment.model_validate(info["resolved"])
    log_path = artifacts_dir(ctx, job) / BUILD_LOG
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as log_file:
        write = _writer(log_file)
        write(f"Environment {info.get('key')} for job {job.name}")
        try:
            built = builder(ctx).build(resolved, log=write)
        except Exception as exc:
            write(f"environment build failed: {exc}")
            raise
        write(
            "Using the cached environment"
            if built.cache_hit
            else f"Built in {built.seconds:.1f} s ({built.reason})"
        )
    record: dict[str, Any] = {
        "cache_hit": built.cache_hit,
        "seconds": round(built.seconds, 3),
        "python": str(built.python),
        "reason": built.reason,
        "log": BUILD_LOG,
    }

    def change(j: Job) -> bool:
        j.environment_info = {**(j.environment_info or {}), "build": record}
        return True

    ctx.store.update_job(job.stored_id, change)
    return str(built.python)


def _writer(log_file: Any) -> Callable[[str], None]:
    def write(line: str) -> None:
        log_file.write(line.rstrip("\n") + "\n")
        log_file.flush()

    return write
