"""Curated environment names in every form, and base images."""

from __future__ import annotations

import pytest

import mill.envs
from mill.envs import curated_name, list_curated
from mill.envs.images import map_image
from mill.errors import SpecError

AVAILABLE = "acpt-pytorch-2.8-cuda12.6, lightgbm-3.3, sklearn-1.5, tensorflow-2.16-cuda12"


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("azureml://registries/azureml/environments/sklearn-1.5/labels/latest", "sklearn-1.5"),
        ("azureml://registries/azureml/environments/sklearn-1.5/versions/14", "sklearn-1.5"),
        ("azureml://registries/azureml/environments/sklearn-1.5", "sklearn-1.5"),
        ("AZUREML://registries/AzureML/environments/SKLEARN-1.5/labels/latest", "sklearn-1.5"),
        ("azureml:AzureML-sklearn-1.5@latest", "sklearn-1.5"),
        ("azureml:AzureML-sklearn-1.5:3", "sklearn-1.5"),
        ("azureml:azureml-SKLEARN-1.5@latest", "sklearn-1.5"),
        ("  azureml:AzureML-lightgbm-3.3@latest ", "lightgbm-3.3"),
        (
            "azureml://registries/azureml/environments/tensorflow-2.16-cuda12/labels/latest",
            "tensorflow-2.16-cuda12",
        ),
        ("azureml:AzureML-tensorflow-2.16-cuda12@latest", "tensorflow-2.16-cuda12"),
        ("azureml:AzureML-acpt-pytorch-2.8-cuda12.6@latest", "acpt-pytorch-2.8-cuda12.6"),
        ("sklearn-1.5", "sklearn-1.5"),
        ("AzureML-sklearn-1.5", "sklearn-1.5"),
    ],
)
def test_curated_name_forms(reference: str, name: str) -> None:
    assert curated_name(reference) == name


@pytest.mark.parametrize(
    "reference",
    [
        "azureml:my-env:1",
        "azureml:xgboost-sklearn-py38@latest",
        "azureml://registries/my-registry/environments/sklearn-1.5/labels/latest",
        "python",
        "file:./env.yml",
    ],
)
def test_not_curated(reference: str) -> None:
    assert curated_name(reference) is None


@pytest.mark.parametrize(
    "reference",
    [
        "azureml://registries/azureml/environments/model-evaluation/labels/latest",
        "azureml://registries/azureml/environments/responsibleai-tabular/versions/3",
        "azureml:AzureML-AutoML@prod",
        "azureml:AzureML-sklearn-0.24-ubuntu18.04-py37-cpu@latest",
        "azureml://registries/azureml/environments/sklearn-9.9/labels/latest",
        "model-evaluation",
    ],
)
def test_unavailable_curated_names(reference: str) -> None:
    with pytest.raises(SpecError) as raised:
        curated_name(reference)
    message = raised.value.message
    assert "is not available in Mill" in message
    assert AVAILABLE in message
    assert repr(reference) in message


def test_list_curated() -> None:
    sets = {s["name"]: s for s in list_curated()}
    assert sorted(sets) == AVAILABLE.split(", ")
    sklearn = sets["sklearn-1.5"]["requirements"]
    assert "pandas~=1.5.3" in sklearn and "mlflow-skinny>=2.9,<3.13" in sklearn
    lightgbm = sets["lightgbm-3.3"]["requirements"]
    assert lightgbm[: len(sklearn)] == sklearn
    assert lightgbm[len(sklearn) :] == ["lightgbm>=4.6", "xgboost~=1.7.6"]
    assert "torch==2.13.0" in sets["acpt-pytorch-2.8-cuda12.6"]["requirements"]
    assert "tensorflow-cpu~=2.16.2" in sets["tensorflow-2.16-cuda12"]["requirements"]
    assert all(s["description"] and s["python"] == "3.11" for s in sets.values())


def test_curated_sets_are_canonical() -> None:
    # requirement lines in the data must already be in canonical form, so what
    # `mill environment list` shows is what goes into the key
    from mill.envs.requirements import canonical_requirement

    for env in list_curated():
        assert [canonical_requirement(r) for r in env["requirements"]] == env["requirements"]


@pytest.mark.parametrize(
    ("image", "family", "python", "requirements"),
    [
        ("python", "python", None, []),
        ("python:3.10", "python", "3.10", []),
        ("python:3.12-slim", "python", "3.12", []),
        ("library/python:latest", "python", None, []),
        ("docker.io/python:3.11.4-bookworm", "python", "3.11", []),
        ("docker.io/library/python", "python", None, []),
        ("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest", "openmpi", None, []),
        ("mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04", "openmpi", None, []),
        (
            "mcr.microsoft.com/azureml/minimal-py312-inference:latest",
            "inference",
            "3.12",
            ["azureml-inference-server-http"],
        ),
        ("pytorch/pytorch:latest", "other", None, []),
        ("mcr.microsoft.com/mmlspark/release:1.0.0-rc3", "other", None, []),
    ],
)
def test_images(image: str, family: str, python: str | None, requirements: list[str]) -> None:
    mapping = map_image(image)
    assert (mapping.family, mapping.python_version, mapping.requirements) == (
        family,
        python,
        requirements,
    )
    assert mapping.notes and image in mapping.notes[0]
    if family == "other":
        assert "not reproduced" in mapping.notes[0]


def test_public_api_is_complete() -> None:
    public = {
        name
        for name in dir(mill.envs)
        if not name.startswith("_")
        and getattr(getattr(mill.envs, name), "__module__", "").startswith("mill.envs")
    }
    assert public == set(mill.envs.__all__)
