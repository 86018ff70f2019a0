"""Bad command jobs: each message names file:line, field path, bad value and what is allowed."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mill.errors import SpecError, SpecIssue
from mill.specs import load_command_job

_NO_VALUE = object()


@dataclass(frozen=True)
class Case:
    id: str
    yaml: str
    field: str
    line: int | None
    value: Any = _NO_VALUE
    allowed: str | None = None  # text the rendered issue must contain (what is allowed)
    message: str | None = None  # more text the rendered issue must contain
    files: dict[str, str] = dataclasses.field(default_factory=dict)
    overrides: tuple[str, ...] = ()
    file: str = "job.yml"


ENV_FORMS = "azureml:<name>:<version>, azureml:<name>@<label>, azureml://registries/..."

CASES = [
    # --- inputs -------------------------------------------------------------------------
    Case(
        "input-type-float",
        """\
        command: python train.py --lr ${{inputs.lr}}
        inputs:
          lr:
            type: float
            value: 0.1
        """,
        "inputs.lr.type",
        4,
        "float",
        "expected one of uri_file, uri_folder, mltable, mlflow_model, custom_model",
    ),
    Case(
        "integer-value-text",
        """\
        command: echo ${{inputs.n}}
        inputs:
          n: {type: integer, value: abc}
        """,
        "inputs.n.value",
        3,
        "abc",
        "expected an integer",
    ),
    Case(
        "integer-value-fraction",
        """\
        command: echo ${{inputs.n}}
        inputs:
          n:
            type: integer
            value: 2.5
        """,
        "inputs.n.value",
        5,
        2.5,
        "expected an integer",
    ),
    Case(
        "number-default-text",
        """\
        command: echo ${{inputs.lr}}
        inputs:
          lr: {type: number, default: fast}
        """,
        "inputs.lr.value",
        3,
        "fast",
        "expected a number",
    ),
    Case(
        "boolean-value-text",
        """\
        command: echo ${{inputs.flag}}
        inputs:
          flag: {type: boolean, value: maybe}
        """,
        "inputs.flag.value",
        3,
        "maybe",
        "expected true or false",
    ),
    Case(
        "input-name-dash",
        """\
        command: echo hi
        inputs:
          learning-rate: 0.1
        """,
        "inputs.learning-rate",
        3,
        "learning-rate",
        "letters, digits and underscores",
        "not a valid name",
    ),
    Case(
        "data-input-without-path",
        """\
        command: echo ${{inputs.data}}
        inputs:
          data: {type: uri_folder, mode: download}
        """,
        "inputs.data.path",
        3,
        allowed="azureml://datastores/<name>/paths/<path>",
        message="required field is missing",
    ),
    Case(
        "input-mode-output-only",
        """\
        command: echo ${{inputs.data}}
        inputs:
          data:
            type: uri_folder
            path: https://example.com/data/
            mode: rw_mount
        """,
        "inputs.data.mode",
        6,
        "rw_mount",
        "expected one of ro_mount, download, direct, eval_mount, eval_download",
    ),
    Case(
        "literal-input-with-path",
        """\
        command: echo ${{inputs.n}}
        inputs:
          n: {type: integer, value: 3, path: ./x}
        """,
        "inputs.n.path",
        3,
        "./x",
        "allowed: type, value (or default), optional, description",
        "a literal input takes value, not path",
    ),
    Case(
        "data-input-with-value",
        """\
        command: echo ${{inputs.d}}
        inputs:
          d: {type: uri_file, value: 3}
        """,
        "inputs.d.value",
        3,
        3,
        "allowed: type, path, mode, optional, description",
        "a data input takes path, not value",
    ),
    Case(
        "input-unknown-field",
        """\
        command: echo ${{inputs.d}}
        inputs:
          d:
            type: uri_file
            paht: data.csv
        """,
        "inputs.d.paht",
        5,
        allowed="allowed: type, path, value, default, mode, optional, description",
        message="unknown field; did you mean 'path'?",
    ),
    Case(
        "input-list",
        """\
        command: echo ${{inputs.x}}
        inputs:
          x: [1, 2]
        """,
        "inputs.x",
        3,
        [1, 2],
        "a literal (text, number, true/false) or a mapping with type and path or value",
    ),
    Case(
        "input-null",
        """\
        command: echo ${{inputs.x}}
        inputs:
          x:
        """,
        "inputs.x",
        3,
        None,
        "a literal (text, number, true/false) or a mapping",
    ),
    Case(
        "inputs-not-a-mapping",
        """\
        command: echo
        inputs: [a, b]
        """,
        "inputs",
        2,
        ["a", "b"],
        "expected a mapping",
    ),
    Case(
        "input-local-path-missing",
        """\
        command: echo ${{inputs.d}}
        inputs:
          d: {type: uri_file, path: data/missing.csv}
        """,
        "inputs.d.path",
        3,
        "data/missing.csv",
        "relative paths start at the YAML file's folder",
        "no such file or folder: ",
    ),
    # --- outputs ------------------------------------------------------------------------
    Case(
        "output-name-with-dash",
        """\
        command: echo
        outputs:
          my-model: {type: mlflow_model}
        """,
        "outputs.my-model",
        3,
        "my-model",
        "letters, digits and underscores, not starting with a digit",
        "not a valid name",
    ),
    Case(
        "output-mode-unknown",
        """\
        command: echo
        outputs:
          model: {mode: rw}
        """,
        "outputs.model.mode",
        3,
        "rw",
        "expected one of rw_mount, upload, direct",
    ),
    Case(
        "output-type-literal",
        """\
        command: echo
        outputs:
          model:
            type: string
        """,
        "outputs.model.type",
        4,
        "string",
        "expected one of uri_file, uri_folder, mltable, mlflow_model, custom_model, triton_model",
    ),
    Case(
        "output-unknown-field",
        """\
        command: echo
        outputs:
          model:
            typo: uri_folder
        """,
        "outputs.model.typo",
        4,
        allowed="allowed: type, path, mode, name, version, description",
        message="unknown field; did you mean 'type'?",
    ),
    Case(
        "output-bare-string",
        """\
        command: echo
        outputs:
          model: azureml://datastores/workspaceblobstore/paths/model
        """,
        "outputs.model",
        3,
        "azureml://datastores/workspaceblobstore/paths/model",
        "a mapping with type, path and mode, or nothing",
    ),
    Case(
        "output-path-input-expression",
        """\
        command: echo
        outputs:
          model: {path: "azureml://datastores/ws/paths/${{inputs.x}}/"}
        """,
        "outputs.model.path",
        3,
        "azureml://datastores/ws/paths/${{inputs.x}}/",
        "${{name}} (the job name)",
        "unknown expression ${{inputs.x}}",
    ),
    # --- top level ----------------------------------------------------------------------
    Case(
        "unknown-top-level-field",
        """\
        command: echo
        dispaly_name: hello
        """,
        "dispaly_name",
        2,
        allowed="display_name, experiment_name",
        message="unknown field; did you mean 'display_name'?",
    ),
    Case(
        "command-missing",
        """\
        display_name: hello
        """,
        "command",
        None,
        message="required field is missing",
    ),
    Case(
        "command-empty",
        """\
        command: ""
        """,
        "command",
        1,
        "",
        "a non-empty shell command",
    ),
    Case(
        "job-name-with-space",
        """\
        name: my job!
        command: echo
        """,
        "name",
        1,
        "my job!",
        "letters, digits, '-' and '_'",
        "not a valid job name",
    ),
    Case(
        "type-unknown",
        """\
        type: commnd
        command: echo
        """,
        "type",
        1,
        "commnd",
        "expected one of command",
    ),
    Case(
        "type-sweep-unsupported",
        """\
        type: sweep
        trial: {command: echo}
        """,
        "type",
        1,
        "sweep",
        "allowed: command",
        "sweep jobs are not supported yet; only command jobs run in this version",
    ),
    Case(
        "tags-value-list",
        """\
        command: echo
        tags:
          team: [a, b]
        """,
        "tags.team",
        3,
        ["a", "b"],
        "expected a string",
    ),
    Case(
        "environment-variable-mapping",
        """\
        command: echo
        environment_variables:
          MODE: {fast: true}
        """,
        "environment_variables.MODE",
        3,
        {"fast": True},
        "expected a string",
    ),
    Case(
        "services-not-mapping",
        """\
        command: echo
        services: jupyter
        """,
        "services",
        2,
        "jupyter",
        "expected a mapping",
    ),
    Case(
        "compute-placeholder",
        """\
        command: echo
        compute: < your compute name >
        """,
        "compute",
        2,
        "< your compute name >",
        "a compute name, azureml:<name> or serverless",
    ),
    Case(
        "code-missing",
        """\
        code: src
        command: python main.py
        """,
        "code",
        1,
        "src",
        "relative paths start at the YAML file's folder",
        "no such file or folder: ",
    ),
    # --- command expressions ------------------------------------------------------------
    Case(
        "command-undeclared-input",
        """\
        command: python train.py --lr ${{inputs.lr}} --data ${{inputs.data}}
        inputs:
          lr: 0.1
        """,
        "command",
        1,
        "${{inputs.data}}",
        "allowed: lr",
        "input 'data' is not declared",
    ),
    Case(
        "command-undeclared-output",
        """\
        command: python train.py --out ${{outputs.model}}
        """,
        "command",
        1,
        "${{outputs.model}}",
        "(no outputs are declared)",
        "output 'model' is not declared",
    ),
    Case(
        "command-optional-input-outside-fragment",
        """\
        command: python train.py --seed ${{inputs.seed}}
        inputs:
          seed: {type: integer, optional: true}
        """,
        "command",
        1,
        "${{inputs.seed}}",
        "$[[... ${{inputs.seed}} ...]]",
        "optional input 'seed' must be used inside $[[...]]",
    ),
    Case(
        "command-search-space",
        """\
        command: python train.py --lr ${{search_space.lr}}
        """,
        "command",
        1,
        "${{search_space.lr}}",
        "${{inputs.<name>}}, ${{outputs.<name>}}, ${{name}}",
        "belongs to sweep jobs",
    ),
    Case(
        "command-parent",
        """\
        command: python train.py --data ${{parent.inputs.data}}
        """,
        "command",
        1,
        "${{parent.inputs.data}}",
        "${{inputs.<name>}}",
        "belongs to pipeline jobs",
    ),
    Case(
        "command-unknown-expression",
        """\
        command: echo ${{default_datastore}}
        """,
        "command",
        1,
        "${{default_datastore}}",
        "${{outputs.<name>}}",
        "not an expression a command job understands",
    ),
    # --- environment --------------------------------------------------------------------
    Case(
        "environment-placeholder",
        """\
        command: echo
        environment: < your environment name >
        """,
        "environment",
        2,
        "< your environment name >",
        ENV_FORMS,
        "a placeholder",
    ),
    Case(
        "environment-image-string",
        """\
        command: echo
        environment: python:3.11-slim
        """,
        "environment",
        2,
        "python:3.11-slim",
        "file:<path.yml> or an inline mapping",
        "not an environment reference",
    ),
    Case(
        "environment-reference-without-version",
        """\
        command: echo
        environment: azureml:my-env
        """,
        "environment",
        2,
        "azureml:my-env",
        "azureml:my-env:<version> or azureml:my-env@latest",
        "needs a version or a label",
    ),
    Case(
        "environment-registry-model",
        """\
        command: echo
        environment: azureml://registries/azureml/models/phi/labels/latest
        """,
        "environment",
        2,
        "azureml://registries/azureml/models/phi/labels/latest",
        ENV_FORMS,
    ),
    Case(
        "environment-file-missing",
        """\
        command: echo
        environment: file:envs/nothere.yml
        """,
        "environment",
        2,
        "file:envs/nothere.yml",
        "relative paths start at the YAML file's folder",
        "no such file or folder",
    ),
    Case(
        "inline-environment-unknown-field",
        """\
        command: echo
        environment:
          imagee: python
        """,
        "environment.imagee",
        3,
        allowed="$schema, name, version, image, conda_file, build",
        message="did you mean 'image'?",
    ),
    Case(
        "inline-environment-empty",
        """\
        command: echo
        environment:
          name: nothing
        """,
        "environment",
        2,
        allowed="at least one of image, conda_file, build",
        message="nothing to build the environment from",
    ),
    Case(
        "inline-environment-conda-missing",
        """\
        command: echo
        environment:
          image: python
          conda_file: conda.yml
        """,
        "environment.conda_file",
        4,
        "conda.yml",
        "relative paths start at the YAML file's folder",
        "no such file or folder",
    ),
    Case(
        "inline-environment-build-without-dockerfile",
        """\
        command: echo
        environment:
          build:
            path: ctx
        """,
        "environment.build.path",
        4,
        "ctx",
        "a folder holding a Dockerfile",
        "the build folder has no Dockerfile",
        files={"ctx/requirements.txt": "numpy\n"},
    ),
    Case(
        "environment-file-unknown-field",
        """\
        command: echo
        environment: file:envs/env.yml
        """,
        "conda_fil",
        3,
        allowed="image, conda_file, build",
        message="did you mean 'conda_file'?",
        files={"envs/env.yml": "name: e\nimage: python\nconda_fil: conda.yml\n"},
        file="envs/env.yml",
    ),
    Case(
        "conda-dependencies-not-list",
        """\
        command: echo
        environment: {image: python, conda_file: envs/conda.yml}
        """,
        "dependencies",
        2,
        "numpy",
        "a list of conda packages",
        files={"envs/conda.yml": "name: c\ndependencies: numpy\n"},
        file="envs/conda.yml",
    ),
    # --- resources, distribution, limits ------------------------------------------------
    Case(
        "instance-count-zero",
        """\
        command: echo
        resources:
          instance_count: 0
        """,
        "resources.instance_count",
        3,
        0,
        "expected an integer >= 1",
    ),
    Case(
        "instance-count-boolean",
        """\
        command: echo
        resources: {instance_count: true}
        """,
        "resources.instance_count",
        2,
        True,
        "expected an integer",
    ),
    Case(
        "distribution-type-unknown",
        """\
        command: echo
        distribution:
          type: horovod
        """,
        "distribution.type",
        3,
        "horovod",
        "expected one of pytorch, tensorflow, mpi",
    ),
    Case(
        "distribution-field-of-other-type",
        """\
        command: echo
        distribution:
          type: pytorch
          worker_count: 2
        """,
        "distribution.worker_count",
        4,
        2,
        "allowed: type, process_count_per_instance",
        "not a setting of pytorch distribution",
    ),
    Case(
        "timeout-negative",
        """\
        command: echo
        limits:
          timeout: -5
        """,
        "limits.timeout",
        3,
        -5,
        "expected an integer > 0",
    ),
    Case(
        "timeout-text",
        """\
        command: echo
        limits: {timeout: soon}
        """,
        "limits.timeout",
        2,
        "soon",
        "expected an integer",
    ),
    # --- values from --set name the override --------------------------------------------
    Case(
        "override-input-type",
        """\
        command: echo ${{inputs.lr}}
        inputs:
          lr: 0.1
        """,
        "inputs.lr.type",
        None,
        "float",
        "expected one of uri_file, uri_folder",
        overrides=("inputs.lr={type: float, value: 0.1}",),
        file="--set inputs.lr={type: float, value: 0.1}",
    ),
    Case(
        "override-creates-input-without-path",
        """\
        command: echo
        inputs:
          lr: 0.1
        """,
        "inputs.extra.path",
        None,
        allowed="azureml://datastores/<name>/paths/<path>",
        message="required field is missing",
        overrides=("inputs.extra.mode=download",),
        file="--set inputs.extra.mode=download",
    ),
    Case(
        "override-instance-count",
        """\
        command: echo
        resources:
          instance_count: 2
        """,
        "resources.instance_count",
        None,
        "many",
        "expected an integer",
        overrides=("resources.instance_count=many",),
        file="--set resources.instance_count=many",
    ),
]


def _write(root: Path, name: str, text: str) -> None:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text))


def _issue_for(error: SpecError, case: Case) -> SpecIssue:
    matching = [i for i in error.issues if i.field == case.field and i.file == case.file]
    assert matching, f"no issue for {case.file} {case.field!r} in:\n{error.message}"
    return matching[0]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_job_is_reported_precisely(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "job.yml", case.yaml)
    for name, text in case.files.items():
        _write(tmp_path, name, text)

    with pytest.raises(SpecError) as raised:
        load_command_job(Path("job.yml"), case.overrides)

    issue = _issue_for(raised.value, case)
    assert issue.line == case.line
    if case.value is not _NO_VALUE:
        assert issue.has_value
        assert issue.value == case.value
    rendered = issue.render()
    where = case.file if case.line is None else f"{case.file}:{case.line}"
    assert rendered.startswith(f"{where} {case.field}: "), rendered
    if case.allowed is not None:
        assert case.allowed in rendered
    if case.message is not None:
        assert case.message in rendered
    if case.value is not _NO_VALUE and isinstance(case.value, str):
        assert f"got {case.value!r}" in rendered
    assert rendered in raised.value.message


def test_there_are_at_least_35_distinct_bad_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 35


def test_every_issue_of_a_document_is_reported_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write(
        tmp_path,
        "job.yml",
        """\
        code: nosuch
        comand: echo
        command: echo
        inputs:
          lr: {type: float}
          n: {type: integer, value: abc}
        resources: {instance_count: 0}
        """,
    )
    with pytest.raises(SpecError) as raised:
        load_command_job(Path("job.yml"))
    located = [(i.line, i.field) for i in raised.value.issues]
    assert located == [
        (1, "code"),
        (2, "comand"),
        (5, "inputs.lr.type"),
        (6, "inputs.n.value"),
        (7, "resources.instance_count"),
    ]
    assert raised.value.details["issues"][0]["file"] == "job.yml"


def test_server_side_errors_have_no_file(tmp_path: Path) -> None:
    from mill.specs import parse_command_job

    with pytest.raises(SpecError) as raised:
        parse_command_job({"command": "echo", "inputs": {"lr": {"type": "float"}}})
    (issue,) = raised.value.issues
    assert issue.render() == (
        "inputs.lr.type: expected one of uri_file, uri_folder, mltable, mlflow_model, "
        "custom_model, triton_model, string, integer, number, boolean; got 'float'"
    )
