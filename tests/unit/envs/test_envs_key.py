"""The environment key: golden values, what it ignores and what it notices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mill.envs import (
    EnvironmentDefinition,
    ResolvedEnvironment,
    canonical_form,
    environment_key,
    explain_difference,
    resolve,
)

PLATFORM = "linux-x86_64-cpython-3.11"


def _resolved(**changes: Any) -> ResolvedEnvironment:
    data: dict[str, Any] = {
        "kind": "virtualenv",
        "python_version": "3.11",
        "python_path": "/usr/bin/python3.11",
        "interpreter_version": "3.11",
        "requirements": ["six==1.16.0", "tomli==2.0.1"],
        "pip_options": [],
        "notes": ["a note"],
        "source": {"conda": "env.yml"},
        "context_digest": None,
    }
    data.update(changes)
    return ResolvedEnvironment(**data)


def test_golden_keys() -> None:
    # A change to the canonical form must change these: old cache entries would be reused
    # for environments they no longer match.
    assert (
        environment_key(_resolved(), PLATFORM)
        == "858c998b8b289f88274e1da5bda2ee55d0ef9bfa2d8e2101af04a1f75a5f0cc5"
    )
    assert (
        environment_key(
            _resolved(
                python_version="3.10.4",
                requirements=["Scikit_Learn>=1.3", "numpy==1.26.*"],
                pip_options=["--extra-index-url=https://example.org/simple"],
                context_digest="ab" * 32,
            ),
            "linux-x86_64-cpython-3.10",
        )
        == "f4ebc94029b1f24f0c5cabb16681d568658b58cb78926929761cfb7028b191b4"
    )


def test_canonical_form_shape() -> None:
    form = canonical_form(
        _resolved(requirements=["Tomli == 2.0.1", "six==1.16.0", "six==1.16.0"]), PLATFORM
    )
    assert form == {
        "format": 1,
        "kind": "virtualenv",
        "python": "3.11",
        "requirements": ["six==1.16.0", "tomli==2.0.1"],
        "pip_options": [],
        "context_digest": None,
        "platform": PLATFORM,
    }


def test_default_platform_uses_the_interpreter_version() -> None:
    assert canonical_form(_resolved(interpreter_version="3.12"))["platform"].endswith("-3.12")
    assert environment_key(_resolved()) == environment_key(_resolved())


@pytest.mark.parametrize(
    "changes",
    [
        {"requirements": ["tomli==2.0.1", "six==1.16.0"]},
        {"requirements": ["  SIX == 1.16.0 ", "Tomli==2.0.1", "six==1.16.0"]},
        {"notes": ["other notes"]},
        {"source": {"curated": "x", "conda_name": "other"}},
        {"python_path": "/elsewhere/python3.11"},
        {"python_version": "3.11.7"},
    ],
)
def test_key_ignores(changes: dict[str, Any]) -> None:
    assert environment_key(_resolved(**changes), PLATFORM) == environment_key(_resolved(), PLATFORM)


@pytest.mark.parametrize(
    "changes",
    [
        {"python_version": "3.10"},
        {"requirements": ["six==1.16.0"]},
        {"requirements": ["six==1.16.0", "tomli==2.0.2"]},
        {"pip_options": ["--pre"]},
        {"context_digest": "0" * 64},
        {"kind": "user_managed"},
    ],
)
def test_key_notices(changes: dict[str, Any]) -> None:
    assert environment_key(_resolved(**changes), PLATFORM) != environment_key(_resolved(), PLATFORM)


def test_key_notices_platform_and_pip_option_order() -> None:
    base = _resolved(pip_options=["--index-url=https://a", "--extra-index-url=https://b"])
    swapped = _resolved(pip_options=["--extra-index-url=https://b", "--index-url=https://a"])
    assert environment_key(base, PLATFORM) != environment_key(swapped, PLATFORM)
    assert environment_key(base, PLATFORM) != environment_key(base, "macosx-14-arm64-cpython-3.11")


CONDA_A = {
    "name": "model-env",
    "channels": ["conda-forge"],
    "dependencies": ["python=3.11", "numpy=1.26", "pip", {"pip": ["six==1.16.0", "tomli"]}],
}
CONDA_B = {  # same packages: other order, name, channels, spacing, comments
    "name": "another-name",
    "channels": ["defaults", "pytorch"],
    "dependencies": [
        {"pip": ["tomli  # the TOML reader", " six == 1.16.0 "]},
        "pip",
        "conda-forge::numpy=1.26",
        "python=3.11",
    ],
}


def _key_of(conda: dict[str, Any], **fields: Any) -> str:
    return environment_key(resolve(EnvironmentDefinition(conda=conda, **fields)))


def test_conda_order_comments_whitespace_name_and_channels_do_not_change_the_key() -> None:
    assert _key_of(CONDA_A) == _key_of(CONDA_B)
    assert _key_of(CONDA_A, conda_source="a.yml") == _key_of(CONDA_A, conda_source="b.yml")


def test_build_context_contents_change_the_key(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n"
    )
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n")
    first = resolve(EnvironmentDefinition(build_context=tmp_path))
    (tmp_path / "requirements.txt").write_text("six==1.16.0\n# now with a comment\n")
    second = resolve(EnvironmentDefinition(build_context=tmp_path))
    assert first.requirements == second.requirements
    assert first.context_digest != second.context_digest
    assert environment_key(first) != environment_key(second)
    form = canonical_form(second)
    assert explain_difference(form, [canonical_form(first)]).endswith("build context changed")


def test_explain_difference_on_an_empty_cache() -> None:
    assert explain_difference(canonical_form(_resolved()), []) == "no environment was built before"


def test_explain_difference_picks_the_nearest_and_says_what_changed() -> None:
    new = canonical_form(
        _resolved(requirements=["pandas==2.2", "six==1.16.0", "xgboost==1.7.6"]), PLATFORM
    )
    near = canonical_form(
        _resolved(requirements=["pandas~=1.5.3", "six==1.16.0", "tomli==2.0.1"]), PLATFORM
    )
    far = canonical_form(
        _resolved(python_version="3.10", requirements=["torch"], pip_options=["--pre"]),
        "linux-x86_64-cpython-3.10",
    )
    text = explain_difference(new, [far, near])
    assert text == (
        "nearest cached environment differs: added: xgboost==1.7.6; removed: tomli==2.0.1; "
        "changed: pandas~=1.5.3 → pandas==2.2"
    )


def test_explain_difference_python_and_options() -> None:
    new = canonical_form(_resolved(python_version="3.10", pip_options=["--pre"]), PLATFORM)
    old = canonical_form(_resolved(), PLATFORM)
    text = explain_difference(new, [old])
    assert "python 3.10 vs 3.11" in text
    assert "pip options differ" in text
