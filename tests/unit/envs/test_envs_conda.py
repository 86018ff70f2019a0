"""Conda files to pip requirements, and every malformed conda file."""

from __future__ import annotations

from typing import Any

import pytest

from mill.envs import conda_to_pip
from mill.errors import SpecError


def _pip(*dependencies: Any) -> list[str]:
    return conda_to_pip({"dependencies": list(dependencies)}, "env/conda.yml").requirements


@pytest.mark.parametrize(
    ("conda", "pip"),
    [
        ("numpy", "numpy"),
        ("numpy=1.26", "numpy==1.26.*"),
        ("numpy=1.26.4", "numpy==1.26.4"),
        ("numpy==1.26", "numpy==1.26"),
        ("numpy>=1.23", "numpy>=1.23"),
        ("numpy >=1.23,<2", "numpy>=1.23,<2"),
        ("numpy 1.21.*", "numpy==1.21.*"),
        ("numpy=1.21.2=py38h20f2e39_0", "numpy==1.21.2"),
        ("conda-forge::numpy=1.26", "numpy==1.26.*"),
        ("pytorch", "torch"),
        ("pytorch=2.1", "torch==2.1.*"),
        ("pytorch-cpu=1.13.1", "torch==1.13.1"),
        ("py-xgboost=1.7.6", "xgboost==1.7.6"),
        ("tensorflow=2.16", "tensorflow==2.16.*"),
        ("matplotlib-base", "matplotlib"),
        ("Scikit_Learn=1.5", "scikit-learn==1.5.*"),
    ],
)
def test_conda_package_to_pip(conda: str, pip: str) -> None:
    assert _pip(conda) == [pip]


def test_pip_and_python_are_not_packages_and_python_is_the_pin() -> None:
    result = conda_to_pip({"dependencies": ["python=3.8.5", "pip=23.1", "pip", "six"]})
    assert result.requirements == ["six"]
    assert result.python_version == "3.8"
    assert conda_to_pip({"dependencies": ["python>=3.8"]}).python_version is None
    assert conda_to_pip({"dependencies": ["python=3.12"]}).python_version == "3.12"


def test_pip_list_is_kept_with_options_separated() -> None:
    result = conda_to_pip(
        {
            "name": "model-env",
            "channels": ["conda-forge"],
            "dependencies": [
                "python=3.12",
                {
                    "pip": [
                        "azureml-inference-server-http==1.4.1",
                        "--extra-index-url=https://example.org/simple",
                        "inference-schema[numpy-support]",
                        "--extra-index-url https://two.example.org/simple",
                        "--pre",
                        "-i https://index.example.org/simple",
                        "--no-cache-dir",
                        "# a comment",
                        "",
                        "git+https://github.com/example/project.git@main",
                    ]
                },
            ],
        },
        "env/conda.yml",
    )
    assert result.requirements == [
        "azureml-inference-server-http==1.4.1",
        "inference-schema[numpy-support]",
        "git+https://github.com/example/project.git@main",
    ]
    assert result.pip_options == [
        "--extra-index-url=https://example.org/simple",
        "--extra-index-url=https://two.example.org/simple",
        "--pre",
        "--index-url=https://index.example.org/simple",
    ]
    assert result.name == "model-env"
    assert any("--no-cache-dir" in note for note in result.notes)


def _error(conda: Any) -> str:
    with pytest.raises(SpecError) as raised:
        conda_to_pip(conda, "env/conda.yml")
    return raised.value.message


@pytest.mark.parametrize(
    ("conda", "expected"),
    [
        (["numpy"], "env/conda.yml: a conda file must be a mapping"),
        ("just text", "env/conda.yml: a conda file must be a mapping"),
        ({"dependencies": "numpy"}, "env/conda.yml dependencies: must be a list"),
        ({"dependencies": [42]}, "env/conda.yml dependencies[0]: not a conda dependency"),
        ({"dependencies": [["numpy"]]}, "env/conda.yml dependencies[0]: not a conda dependency"),
        (
            {"dependencies": ["six", {"npm": ["x"]}]},
            "env/conda.yml dependencies[1]: not a conda dependency",
        ),
        ({"dependencies": [{"pip": "six"}]}, "env/conda.yml dependencies[0].pip: must be a list"),
        (
            {"dependencies": [{"pip": ["six", 3]}]},
            "env/conda.yml dependencies[0].pip[1]: not a pip requirement line",
        ),
        ({"dependencies": [{"pip": ["numpy=1.2"]}]}, "not a version specifier"),
        ({"dependencies": [{"pip": ["--no-such-option"]}]}, "a pip option Mill does not know"),
        ({"dependencies": [{"pip": ["-r requirements.txt"]}]}, "is not supported in a conda file"),
        ({"dependencies": ["numpy=1.2|1.3"]}, "conda 'or' versions cannot be translated"),
        ({"dependencies": ["numpy=abc"]}, "not a conda version"),
    ],
)
def test_malformed_conda_files(conda: Any, expected: str) -> None:
    assert expected in _error(conda)


def test_conda_only_packages_are_named_with_the_file() -> None:
    message = _error(
        {
            "dependencies": [
                "python=3.10",
                "cudatoolkit=11.8",
                "numpy",
                "conda-forge::cudnn",
                "_libgcc_mutex=0.1",
                "ld_impl_linux-64",
            ]
        }
    )
    assert message == (
        "env/conda.yml dependencies: conda-only packages with no PyPI counterpart: "
        "cudatoolkit, cudnn, _libgcc_mutex, ld_impl_linux-64"
    )


def test_every_issue_is_reported_at_once() -> None:
    message = _error({"dependencies": [1, "mkl", {"pip": [None]}]})
    assert message.count("env/conda.yml") == 3


def test_no_dependencies_is_an_empty_environment() -> None:
    result = conda_to_pip({"name": "empty"})
    assert result.requirements == [] and result.python_version is None
