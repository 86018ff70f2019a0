"""resolve(): interpreters, known bad pins, curated sets, images, user-managed."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mill.envs import EnvironmentDefinition, resolve
from mill.envs.interpreters import find_python
from mill.errors import SpecError


def _fake_python(path: Path, version: str) -> str:
    """An executable that answers the version query like a real interpreter."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A 3.11 host interpreter, and a machine with python3.10 on PATH and 3.9 in pyenv."""
    bin_dir = tmp_path / "bin"
    _fake_python(bin_dir / "python3.10", "3.10")
    shims = tmp_path / "pyenv" / "shims"
    _fake_python(shims / "python3.9", "3.9")  # a shim: must be skipped
    for patch in ("1", "18", "7"):
        _fake_python(tmp_path / "pyenv" / "versions" / f"3.9.{patch}" / "bin" / "python3.9", "3.9")
    monkeypatch.setenv("PATH", os.pathsep.join([str(shims), str(bin_dir)]))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    return _fake_python(tmp_path / "host" / "python", "3.11")


def _conda(*dependencies: Any) -> EnvironmentDefinition:
    return EnvironmentDefinition(
        conda={"dependencies": list(dependencies)}, conda_source="env/conda.yml"
    )


def test_host_python_when_nothing_is_pinned(host: str) -> None:
    resolved = resolve(_conda("six"), host_python=host)
    assert (resolved.python_version, resolved.python_path) == ("3.11", host)
    assert resolved.interpreter_version == "3.11"
    assert resolved.notes == []


def test_pinned_python_found_on_path(host: str, tmp_path: Path) -> None:
    resolved = resolve(_conda("python=3.10.4", "six"), host_python=host)
    assert resolved.python_version == "3.10"
    assert resolved.python_path == str(tmp_path / "bin" / "python3.10")
    assert resolved.interpreter_version == "3.10"


def test_pinned_python_found_in_pyenv_newest_patch(host: str, tmp_path: Path) -> None:
    resolved = resolve(_conda("python=3.9"), host_python=host)
    assert resolved.python_path == str(tmp_path / "pyenv/versions/3.9.18/bin/python3.9")


def test_pinned_python_missing_uses_the_host_with_a_note(host: str) -> None:
    resolved = resolve(_conda("python=3.7", "six"), host_python=host)
    assert (resolved.python_version, resolved.python_path) == ("3.7", host)
    assert resolved.interpreter_version == "3.11"
    assert resolved.notes == [
        f"python 3.7 asked for by env/conda.yml, but this machine has no python3.7: "
        f"using the host's python 3.11 ({host})"
    ]


def test_find_python_skips_shims(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "shims" / "python3.12", "3.12")
    assert find_python("3.12", search_path=str(Path(shim).parent), pyenv_root=tmp_path) is None


def test_python_from_image_and_dockerfile(host: str, tmp_path: Path) -> None:
    assert (
        resolve(EnvironmentDefinition(image="python:3.10-slim"), host_python=host).python_version
        == "3.10"
    )
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM python:3.9\n")
    resolved = resolve(EnvironmentDefinition(build_context=tmp_path / "ctx"), host_python=host)
    assert resolved.python_version == "3.9"
    # the conda pin wins over the image tag
    both = EnvironmentDefinition(image="python:3.10", conda={"dependencies": ["python=3.11"]})
    assert resolve(both, host_python=host).python_version == "3.11"


@pytest.mark.parametrize(
    ("dependencies", "expected"),
    [
        (
            ["scikit-learn=1.1.2"],
            "env/conda.yml: scikit-learn==1.1.2 does not install on CPython 3.11; "
            "nearest that installs: scikit-learn==1.1.3 with numpy<2",
        ),
        (
            [{"pip": ["scikit-learn==1.2.2"]}],
            "env/conda.yml: scikit-learn==1.2.2 with numpy unpinned does not work on CPython "
            "3.11: its wheels break on numpy 2; nearest that installs: add numpy<2",
        ),
        (
            ["pandas=1.4"],
            "pandas==1.4.* does not install on CPython 3.11; nearest that installs: pandas~=1.5.3",
        ),
        ([{"pip": ["pandas==1.4.2"]}], "nearest that installs: pandas~=1.5.3"),
        ([{"pip": ["cloudpickle==1.6.0"]}], "nearest that installs: cloudpickle>=2.2"),
        ([{"pip": ["cloudpickle==1.1.1"]}], "nearest that installs: cloudpickle>=2.2"),
        (["tensorflow==2.9.3"], "nearest that installs: tensorflow-cpu>=2.12"),
        (["pytorch=1.13.0"], "torch==1.13.0 does not install on CPython 3.11"),
        ([{"pip": ["torchvision==0.14.0"]}], "with its matching torchvision"),
    ],
)
def test_known_bad_pins_fail_before_any_build(
    host: str, dependencies: list[Any], expected: str
) -> None:
    with pytest.raises(SpecError) as raised:
        resolve(_conda("python=3.11", *dependencies), host_python=host)
    assert expected in raised.value.message
    assert raised.value.hint == "change these pins; Mill does not rewrite them for you"


@pytest.mark.parametrize(
    "dependencies",
    [
        ["scikit-learn=1.2.2", "numpy<2"],
        ["scikit-learn=1.2.2", "numpy=1.26"],
        [{"pip": ["scikit-learn==1.2.2", "numpy~=1.26.4"]}],
        ["scikit-learn=1.1.3"],
        ["pandas>=1.4"],
        ["cloudpickle==1.6.1"],
    ],
)
def test_pins_that_install(host: str, dependencies: list[Any]) -> None:
    resolve(_conda("python=3.11", *dependencies), host_python=host)


def test_bad_pins_are_fine_on_an_older_interpreter(host: str) -> None:
    resolved = resolve(_conda("python=3.9", "scikit-learn=1.1.2"), host_python=host)
    assert resolved.interpreter_version == "3.9"


def test_curated_set(host: str) -> None:
    resolved = resolve(
        EnvironmentDefinition(curated="azureml:AzureML-sklearn-1.5@latest"), host_python=host
    )
    assert resolved.source == {"curated": "sklearn-1.5"}
    assert "scikit-learn~=1.5.0" in resolved.requirements
    assert resolved.python_version == "3.11"


def test_curated_errors(host: str) -> None:
    with pytest.raises(SpecError, match="not available in Mill"):
        resolve(EnvironmentDefinition(curated="azureml:AzureML-AutoML@prod"), host_python=host)
    with pytest.raises(SpecError, match="not a curated environment name"):
        resolve(EnvironmentDefinition(curated="azureml:my-env:1"), host_python=host)
    with pytest.raises(SpecError, match="cannot be combined"):
        resolve(EnvironmentDefinition(curated="sklearn-1.5", image="python"), host_python=host)


def test_inference_image_adds_the_server_unless_listed(host: str) -> None:
    image = "mcr.microsoft.com/azureml/minimal-py312-inference:latest"
    plain = resolve(EnvironmentDefinition(image=image), host_python=host)
    assert plain.requirements == ["azureml-inference-server-http"]
    pinned = resolve(
        EnvironmentDefinition(
            image=image,
            conda={"dependencies": [{"pip": ["azureml-inference-server-http==1.4.1"]}]},
        ),
        host_python=host,
    )
    assert pinned.requirements == ["azureml-inference-server-http==1.4.1"]


def test_unknown_image_is_a_note(host: str) -> None:
    resolved = resolve(EnvironmentDefinition(image="pytorch/pytorch:latest"), host_python=host)
    assert resolved.source == {"image": "pytorch/pytorch:latest"}
    assert "its contents are not reproduced" in resolved.notes[0]


def test_user_managed(host: str) -> None:
    resolved = resolve(EnvironmentDefinition(user_managed=True, python_path=host))
    assert resolved.kind == "user_managed"
    assert resolved.requirements == [] and resolved.python_path == host


@pytest.mark.parametrize("python", [None, "/no/such/python3", "__not_executable__"])
def test_user_managed_needs_an_existing_interpreter(tmp_path: Path, python: str | None) -> None:
    if python == "__not_executable__":
        python = str(tmp_path / "python")
        Path(python).write_text("not a program")
    with pytest.raises(SpecError) as raised:
        resolve(EnvironmentDefinition(user_managed=True, python_path=python))
    assert raised.value.message.startswith("python_path: ")


def test_user_managed_interpreter_that_does_not_run(tmp_path: Path) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    broken.chmod(0o755)
    with pytest.raises(SpecError, match="not a working Python interpreter: boom"):
        resolve(EnvironmentDefinition(user_managed=True, python_path=str(broken)))
