"""--builder docker: the Dockerfile it writes, and a real build where an engine answers."""

from __future__ import annotations

import subprocess

import pytest

from mill.envs import (
    DockerImageBuilder,
    EnvironmentDefinition,
    dockerfile_for,
    environment_key,
    resolve,
)
from mill.errors import NotSupportedError

CONDA = {
    "dependencies": [
        "python=3.11",
        "pip",
        {"pip": ["tomli-w==1.0.0", "--extra-index-url https://example.invalid/simple"]},
    ]
}


def _resolved():  # type: ignore[no-untyped-def]
    return resolve(EnvironmentDefinition(image="python:3.11", conda=CONDA))


def test_the_dockerfile_reproduces_the_spec() -> None:
    resolved = _resolved()
    key = environment_key(resolved)
    text = dockerfile_for(resolved, key)
    lines = text.splitlines()
    assert lines[0] == f"FROM python:{resolved.python_version}-slim"
    assert f'mill.environment.key="{key}"' in lines[1]
    assert lines[-1].startswith("RUN pip install --no-cache-dir ")
    assert "tomli-w==1.0.0" in lines[-1] and "--extra-index-url" in lines[-1]


def test_user_managed_environments_have_no_image() -> None:
    import sys

    resolved = resolve(EnvironmentDefinition(user_managed=True, python_path=sys.executable))
    with pytest.raises(NotSupportedError):
        dockerfile_for(resolved, "k")


def test_without_an_engine_the_build_says_why() -> None:
    builder = DockerImageBuilder()
    ok, why = builder.available()
    if ok:
        pytest.skip(f"a container engine answers here ({why}); the refusal cannot be seen")
    with pytest.raises(NotSupportedError, match="needs a container engine"):
        builder.build(_resolved())


def test_a_real_image_where_an_engine_answers() -> None:
    builder = DockerImageBuilder()
    ok, why = builder.available()
    if not ok:
        pytest.skip(f"no container engine on this machine: {why}")
    resolved = resolve(
        EnvironmentDefinition(
            image="python:3.11", conda={"dependencies": [{"pip": ["tomli-w==1.0.0"]}]}
        )
    )
    image = builder.build(resolved, log=lambda _line: None)
    ran = subprocess.run(
        ["docker", "run", "--rm", image.tag, "python", "-c", "import tomli_w; print('ok')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.strip() == "ok"
