"""Problems inside environment and conda files name those files, not the job."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mill.errors import SpecError
from mill.specs import load_command_job


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text))


def _errors(project: Path, env_file: str, env_text: str, extra: dict[str, str]) -> str:
    _write(project, "job.yml", f"command: echo\nenvironment: file:{env_file}\n")
    _write(project, env_file, env_text)
    for name, text in extra.items():
        _write(project, name, text)
    with pytest.raises(SpecError) as raised:
        load_command_job(Path("job.yml"))
    return raised.value.message


def test_malformed_environment_file(project: Path) -> None:
    message = _errors(project, "env/env.yml", "name: e\nimage: [python\n", {})
    assert message.startswith("env/env.yml:3: invalid YAML: ")


def test_missing_conda_file_named_in_the_environment_file(project: Path) -> None:
    message = _errors(project, "env/env.yml", "name: e\nimage: python\nconda_file: c.yml\n", {})
    assert message.startswith("env/env.yml:3 conda_file: no such file or folder: ")
    assert str(project / "env/c.yml") in message
    assert message.endswith("got 'c.yml'")


def test_conda_file_without_dependencies(project: Path) -> None:
    message = _errors(
        project,
        "env/env.yml",
        "name: e\nconda_file: conda.yml\n",
        {"env/conda.yml": "name: c\nchannels: [conda-forge]\n"},
    )
    assert message == (
        "env/conda.yml dependencies: required field is missing; "
        "allowed: a list of conda packages (and a pip: list)"
    )


def test_conda_file_that_is_not_a_mapping(project: Path) -> None:
    message = _errors(
        project,
        "env/env.yml",
        "name: e\nconda_file: conda.yml\n",
        {"env/conda.yml": "- numpy\n"},
    )
    assert message.startswith("env/conda.yml:1: expected a mapping of fields at the top level")


def test_job_and_environment_issues_are_reported_together(project: Path) -> None:
    _write(project, "env.yml", "name: e\nimagee: python\n")
    _write(project, "job.yml", "comand: echo\ncommand: echo\nenvironment: env.yml\n")
    with pytest.raises(SpecError) as raised:
        load_command_job(Path("job.yml"))
    assert [(i.file, i.line, i.field) for i in raised.value.issues] == [
        ("job.yml", 1, "comand"),
        ("env.yml", 2, "imagee"),
    ]


@pytest.mark.parametrize(
    ("schema", "kind"),
    [
        ("https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json", "sweep"),
        ("https://azuremlschemas.azureedge.net/latest/pipelineJob.schema.json", "pipeline"),
        ("http://azureml/sdk-2-0/PipelineJob.json", "pipeline"),
    ],
)
def test_other_job_schemas_without_type_are_not_supported(
    project: Path, schema: str, kind: str
) -> None:
    _write(project, "job.yml", f"$schema: {schema}\njobs: {{}}\n")
    with pytest.raises(SpecError) as raised:
        load_command_job(Path("job.yml"))
    (issue,) = raised.value.issues
    assert (issue.file, issue.line, issue.field) == ("job.yml", 1, "$schema")
    assert f"{kind} jobs are not supported yet" in issue.message
