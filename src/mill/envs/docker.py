"""Building the same resolved environment as a real OCI image, where a container engine runs.

The image is ``python:<version>-slim`` with the environment's requirements installed by pip,
tagged ``mill-env:<key[:16]>`` and labelled with the full key, so it is the virtualenv's
twin: the same canonical spec, the same key.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from mill.envs.builder import EnvironmentBuildError
from mill.envs.definition import ResolvedEnvironment
from mill.envs.key import environment_key
from mill.errors import NotSupportedError

__all__ = ["BuiltImage", "DockerImageBuilder", "dockerfile_for"]

_INFO_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class BuiltImage:
    key: str
    tag: str
    seconds: float


def dockerfile_for(resolved: ResolvedEnvironment, key: str) -> str:
    """The Dockerfile that reproduces ``resolved`` (requirements inline: no build context)."""
    if resolved.kind != "virtualenv":
        raise NotSupportedError("a user-managed environment has nothing to build into an image")
    lines = [
        f"FROM python:{resolved.python_version}-slim",
        f'LABEL org.opencontainers.image.title="mill-env" mill.environment.key="{key}"',
        "ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    if resolved.requirements:
        args = [*resolved.pip_options, *resolved.requirements]
        lines.append("RUN pip install --no-cache-dir " + " ".join(shlex.quote(a) for a in args))
    return "\n".join(lines) + "\n"


class DockerImageBuilder:
    """``docker build`` of a resolved environment; refuses clearly where no engine answers."""

    def __init__(self, docker: str | None = None) -> None:
        self.docker = docker or shutil.which("docker") or "docker"

    def available(self) -> tuple[bool, str]:
        """Whether ``docker info`` answers, and if not, what it said."""
        try:
            result = subprocess.run(
                [self.docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=_INFO_TIMEOUT_SECONDS,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"`docker info` could not run: {exc}"
        if result.returncode != 0:
            said = (result.stderr or result.stdout).strip().splitlines()
            return False, f"`docker info` failed: {said[-1] if said else 'no output'}"
        return True, f"Docker engine {result.stdout.strip()}"

    def build(
        self, resolved: ResolvedEnvironment, *, log: Callable[[str], None] = print
    ) -> BuiltImage:
        ok, why = self.available()
        if not ok:
            raise NotSupportedError(
                f"--builder docker needs a container engine, and none answers: {why}",
                hint="use the default builder (uv virtualenvs), or start Docker",
            )
        key = environment_key(resolved)
        tag = f"mill-env:{key[:16]}"
        start = time.monotonic()
        log(f"$ {self.docker} build -t {tag} - (Dockerfile from the environment's spec)")
        process = subprocess.Popen(
            [self.docker, "build", "-t", tag, "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert process.stdin is not None and process.stdout is not None  # both are pipes
        process.stdin.write(dockerfile_for(resolved, key))
        process.stdin.close()
        tail: list[str] = []
        for line in process.stdout:
            log(line.rstrip("\n"))
            tail = [*tail[-19:], line.rstrip("\n")]
        if process.wait() != 0:
            raise EnvironmentBuildError(
                "environment build failed: docker build exited with code "
                f"{process.returncode}\n" + "\n".join(tail)
            )
        return BuiltImage(key=key, tag=tag, seconds=time.monotonic() - start)
