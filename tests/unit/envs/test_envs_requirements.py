"""Requirement lines and pip options, canonicalised."""

from __future__ import annotations

import pytest

from mill.envs.builder import uv_options
from mill.envs.requirements import (
    RequirementSyntaxError,
    canonical_requirement,
    parse_pip_arguments,
)


@pytest.mark.parametrize(
    ("line", "canonical"),
    [
        ("six", "six"),
        ("  Six==1.16.0  ", "six==1.16.0"),
        ("Scikit_Learn [AllDeps, Tests] >= 1.2 , <2", "scikit-learn[alldeps,tests]>=1.2,<2"),
        ("zope.interface", "zope-interface"),
        ("numpy==1.26.* ; python_version  <  '3.12'", "numpy==1.26.*; python_version < '3.12'"),
        ("pkg (>=1.0)", "pkg>=1.0"),
        ("pandas~=1.5.3 # the last 1.x", "pandas~=1.5.3"),
        ("torch @ https://example.org/torch.whl", "torch @ https://example.org/torch.whl"),
        ("https://example.org/a-1.0.whl", "https://example.org/a-1.0.whl"),
        ("git+https://github.com/o/r.git#egg=r", "git+https://github.com/o/r.git#egg=r"),
    ],
)
def test_canonical_requirement(line: str, canonical: str) -> None:
    assert canonical_requirement(line) == canonical


@pytest.mark.parametrize("line", ["", "# only a comment", "numpy=1.2", "numpy >> 2", "[x]"])
def test_bad_requirements(line: str) -> None:
    with pytest.raises(RequirementSyntaxError):
        canonical_requirement(line)


def test_pip_arguments() -> None:
    parsed = parse_pip_arguments(
        [
            "--no-cache-dir",
            "-U",
            "-qq",
            "-i",
            "https://a/simple",
            "--extra-index-url=https://b/simple",
            "-fhttps://c/links",
            "--pre",
            "--progress-bar",
            "off",
            "-r",
            "reqs.txt",
            "-e",
            ".",
            "Six",
            "tomli==2.0.1",
        ]
    )
    assert parsed.requirements == ["six", "tomli==2.0.1"]
    assert parsed.options == [
        "--index-url=https://a/simple",
        "--extra-index-url=https://b/simple",
        "--find-links=https://c/links",
        "--pre",
    ]
    assert parsed.ignored == ["--no-cache-dir", "--upgrade", "--quiet", "--progress-bar off"]
    assert parsed.files == [("--requirement", "reqs.txt"), ("--editable", ".")]


@pytest.mark.parametrize("tokens", [["--index-url"], ["--pre=yes"], ["--mystery"], ["-z"]])
def test_bad_pip_arguments(tokens: list[str]) -> None:
    with pytest.raises(RequirementSyntaxError):
        parse_pip_arguments(tokens)


def test_uv_spelling_of_pip_options() -> None:
    assert uv_options(["--pre", "--trusted-host=h", "--extra-index-url=https://x"]) == [
        "--prerelease=allow",
        "--allow-insecure-host=h",
        "--extra-index-url=https://x",
        "--index-strategy=unsafe-best-match",
    ]
    assert uv_options(["--index-url=https://x", "--no-deps"]) == [
        "--index-url=https://x",
        "--no-deps",
    ]
