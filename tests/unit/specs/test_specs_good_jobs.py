"""Command jobs written in each accepted form load to the expected normalised model."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from mill.specs import (
    CommandJob,
    JobInput,
    JobOutput,
    load_command_job,
    parse_command_job,
    render_command,
)
from mill.specs.expressions import format_literal


def _write(root: Path, name: str, text: str) -> Path:
    target = root / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text))
    return target


def _roundtrip(job: CommandJob) -> None:
    wire = json.loads(json.dumps(job.model_dump(mode="json", by_alias=True, exclude_none=True)))
    assert parse_command_job(wire) == job


def test_minimal_job_gets_defaults(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "hello/job.yml",
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
        command: echo "hello world"
        environment: azureml://registries/azureml/environments/sklearn-1.5/labels/latest
        compute: azureml:cpu-cluster
        """,
    )
    job = load_command_job(job_file)
    assert job.type == "command"
    assert job.schema_ == "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json"
    assert job.experiment_name == "hello"  # the folder of the YAML file
    assert job.compute == "cpu-cluster"
    assert job.environment == (
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest"
    )
    assert job.resources.instance_count == 1
    assert job.limits.timeout is None
    assert job.inputs == {} and job.outputs == {}
    _roundtrip(job)


def test_bare_literal_inputs_infer_their_type_bool_before_int(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: python main.py --C ${{inputs.C}} --kernel ${{inputs.kernel}}
          --shrinking ${{inputs.shrinking}} --n ${{inputs.n}}
        inputs:
          C: 0.8
          kernel: rbf
          shrinking: False
          n: 3
        """,
    )
    inputs = load_command_job(job_file).inputs
    assert inputs["C"] == JobInput(type="number", value=0.8)
    assert inputs["kernel"] == JobInput(type="string", value="rbf")
    assert inputs["shrinking"] == JobInput(type="boolean", value=False)
    assert inputs["n"] == JobInput(type="integer", value=3)
    assert all(i.is_literal for i in inputs.values())


def test_an_input_named_type_is_a_literal_not_a_type(tmp_path: Path) -> None:
    # hello-iris-literal.yml: the inputs map is always name -> input.
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: echo ${{inputs.iris_csv}}
        inputs: {type: uri_file, iris_csv: "https://azuremlexamples.blob.core.windows.net/datasets/iris.csv"}
        """,
    )
    inputs = load_command_job(job_file).inputs
    assert inputs["type"] == JobInput(type="string", value="uri_file")
    assert inputs["iris_csv"].type == "string"
    assert inputs["iris_csv"].value == (
        "https://azuremlexamples.blob.core.windows.net/datasets/iris.csv"
    )


def test_literal_mappings_are_checked_and_converted(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: echo
        inputs:
          a: {type: integer, value: "3"}
          b: {type: integer, default: 4}
          c: {type: number, value: 1}
          d: {type: number, value: "0.25"}
          e: {type: boolean, value: "True"}
          f: {type: boolean, default: 'false'}
          g: {type: string, value: 3}
          h: {type: string, description: free text, optional: true}
          i: {value: 7}
        """,
    )
    inputs = load_command_job(job_file).inputs
    assert (inputs["a"].type, inputs["a"].value) == ("integer", 3)
    assert inputs["b"].value == 4
    assert inputs["c"].value == 1
    assert inputs["d"].value == 0.25
    assert inputs["e"].value is True
    assert inputs["f"].value is False
    assert inputs["g"].value == "3"
    assert inputs["h"] == JobInput(type="string", description="free text", optional=True)
    assert (inputs["i"].type, inputs["i"].value) == ("integer", 7)


def test_data_inputs_resolve_local_paths_and_keep_uris(tmp_path: Path) -> None:
    _write(tmp_path, "proj/data/iris.csv", "a,b\n")
    (tmp_path / "proj/folder").mkdir()
    job_file = _write(
        tmp_path,
        "proj/job.yml",
        """\
        command: echo ${{inputs.local}} ${{inputs.folder}} ${{inputs.store}} ${{inputs.web}}
        inputs:
          local: {type: uri_file, path: data/iris.csv, mode: download}
          folder: {path: file:./folder}
          store:
            type: uri_file
            path: azureml://datastores/workspaceblobstore/paths/example-data/iris.csv
            mode: direct
          web: {type: mltable, path: "https://example.com/tables/iris/"}
          blob: {type: uri_folder, path: "wasbs://data@acct.blob.core.windows.net/x/"}
          maybe: {type: uri_folder, optional: true}
        """,
    )
    inputs = load_command_job(job_file).inputs
    assert inputs["local"].path == str(tmp_path / "proj/data/iris.csv")
    assert inputs["local"].mode == "download"
    assert inputs["folder"] == JobInput(type="uri_folder", path=str(tmp_path / "proj/folder"))
    assert inputs["store"].path == (
        "azureml://datastores/workspaceblobstore/paths/example-data/iris.csv"
    )
    assert inputs["web"].path == "https://example.com/tables/iris/"
    assert inputs["blob"].path == "wasbs://data@acct.blob.core.windows.net/x/"
    assert inputs["maybe"].path is None and inputs["maybe"].optional


def test_relative_paths_resolve_from_the_yaml_folder_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "proj/src/main.py", "print('hi')\n")
    _write(tmp_path, "proj/data/x.csv", "1\n")
    _write(
        tmp_path,
        "proj/job.yml",
        """\
        code: src
        command: python main.py --x ${{inputs.x}}
        inputs:
          x: {type: uri_file, path: data/x.csv}
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    job = load_command_job(Path("../proj/job.yml"))
    assert job.code == str(tmp_path / "proj/src")
    assert job.inputs["x"].path == str(tmp_path / "proj/data/x.csv")
    assert job.experiment_name == "proj"


def test_code_may_be_a_single_file(tmp_path: Path) -> None:
    _write(tmp_path, "run.sh", "echo hi\n")
    job = load_command_job(_write(tmp_path, "job.yml", "code: run.sh\ncommand: bash run.sh\n"))
    assert job.code == str(tmp_path / "run.sh")


def test_outputs_null_and_mapping_forms(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: echo hi > ${{outputs.model}}/x ${{outputs.file}} ${{outputs.artifacts}}
        outputs:
          model:
          artifacts:
          file:
            type: uri_file
            path: azureml://datastores/workspaceblobstore/paths/${{name}}/hello.txt
            mode: mount
          registered: {type: mlflow_model, name: my-model, version: 1, mode: upload}
        """,
    )
    outputs = load_command_job(job_file).outputs
    assert outputs["model"] == JobOutput()
    assert (outputs["model"].type, outputs["model"].mode) == ("uri_folder", "rw_mount")
    assert outputs["file"].mode == "rw_mount"
    assert outputs["file"].path == (
        "azureml://datastores/workspaceblobstore/paths/${{name}}/hello.txt"
    )
    assert (outputs["registered"].name, outputs["registered"].version) == ("my-model", "1")


def test_optional_fragments_and_name_in_command(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: >-
          python train.py --epochs ${{ inputs.epochs }}
          $[[--seed ${{inputs.seed}}]] $[[inputs.tag]] --run ${{name}}
        inputs:
          epochs: 2
          seed: {type: integer, optional: true}
          tag: {type: string, optional: true, value: fast}
        """,
    )
    job = load_command_job(job_file)
    rendered = render_command(
        job.command,
        inputs={
            k: format_literal(v.value) if v.value is not None else None
            for k, v in job.inputs.items()
        },
        outputs={},
        name="job-1",
    )
    assert rendered == "python train.py --epochs 2  fast --run job-1"


def test_overrides_set_nested_fields_and_create_mappings(tmp_path: Path) -> None:
    _write(tmp_path, "data/unlabeled/a.csv", "1\n")
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: echo ${{inputs.lr}}
        inputs:
          lr: 0.1
        outputs:
          model:
        """,
    )
    job = load_command_job(
        job_file,
        [
            "inputs.lr=0.5",
            "inputs.data.path=data/unlabeled",
            "tags.team.x=1",
            "tags.team=ml",
            "resources.instance_count=2",
            "environment_variables.DEBUG=True",
            "outputs.model.mode=upload",
            "compute=azureml:serverless",
            "display_name=my run # not a comment",
        ],
    )
    assert job.inputs["lr"].value == 0.5
    assert job.inputs["data"] == JobInput(type="uri_folder", path=str(tmp_path / "data/unlabeled"))
    assert job.tags == {"team": "ml"}
    assert job.resources.instance_count == 2
    assert job.environment_variables == {"DEBUG": "True"}
    assert job.outputs["model"].mode == "upload"
    assert job.compute == "serverless"
    assert job.display_name == "my run # not a comment"


def test_file_environment_is_loaded_and_inlined(tmp_path: Path) -> None:
    _write(tmp_path, "envs/conda.yml", "name: e\ndependencies:\n  - python=3.11\n  - pip\n")
    _write(
        tmp_path,
        "envs/env.yml",
        """\
        $schema: https://azuremlschemas.azureedge.net/latest/environment.schema.json
        name: my-env
        version: 1
        image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest
        conda_file: conda.yml
        """,
    )
    for reference in ("file:envs/env.yml", "envs/env.yml", "file:./envs/env.yml"):
        job_file = _write(tmp_path, "job.yml", f"command: echo\nenvironment: {reference}\n")
        job = load_command_job(job_file)
        assert job.environment == {
            "name": "my-env",
            "version": "1",
            "image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
            "conda_file": str(tmp_path / "envs/conda.yml"),
            "tags": {},
        }
        _roundtrip(job)


def test_inline_environment_paths_resolve_from_the_job_folder(tmp_path: Path) -> None:
    _write(tmp_path, "env.yml", "dependencies: [python=3.12, {pip: [numpy]}]\n")
    _write(tmp_path, "docker-context/Dockerfile", "FROM python:3.12\n")
    _write(tmp_path, "ctx2/train.Dockerfile", "FROM python:3.12\n")
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        command: echo
        environment:
          image: python
          conda_file: env.yml
        """,
    )
    assert load_command_job(job_file).environment == {
        "image": "python",
        "conda_file": str(tmp_path / "env.yml"),
        "tags": {},
    }
    built = load_command_job(
        _write(tmp_path, "b.yml", "command: echo\nenvironment: {build: {path: docker-context}}\n")
    )
    assert built.environment == {"build": {"path": str(tmp_path / "docker-context")}, "tags": {}}
    custom = load_command_job(
        _write(
            tmp_path,
            "c.yml",
            "command: echo\n"
            "environment: {build: {path: ctx2, dockerfile_path: train.Dockerfile}}\n",
        )
    )
    assert custom.environment is not None


@pytest.mark.parametrize(
    "reference",
    [
        "azureml:my-env:1",
        "azureml:sklearn-regression-env:22.02-py3",
        "azureml:AzureML-sklearn-1.5@latest",
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        "azureml://registries/azureml/environments/model-evaluation/versions/6",
    ],
)
def test_environment_references(tmp_path: Path, reference: str) -> None:
    job = load_command_job(
        _write(tmp_path, "job.yml", f"command: echo\nenvironment: {reference}\n")
    )
    assert job.environment == reference


def test_environment_may_be_omitted(tmp_path: Path) -> None:
    assert load_command_job(_write(tmp_path, "job.yml", "command: echo\n")).environment is None


@pytest.mark.parametrize(
    ("written", "normalized"),
    [
        ("azureml:cpu-cluster", "cpu-cluster"),
        ("cpu-cluster", "cpu-cluster"),
        ("azureml:serverless", "serverless"),
        ("serverless", "serverless"),
        ('""', None),
    ],
)
def test_compute_with_or_without_prefix(
    tmp_path: Path, written: str, normalized: str | None
) -> None:
    job = load_command_job(_write(tmp_path, "job.yml", f"command: echo\ncompute: {written}\n"))
    assert job.compute == normalized


def test_the_rest_of_the_command_job_fields(tmp_path: Path) -> None:
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        type: command
        name: my_job-01
        display_name: Hello
        experiment_name: exp
        description: |
          Multi-line
          description.
        tags: {hello: world, n: 1}
        properties: {p: true}
        command: python train.py
        environment_variables: {A: 1, B: , C: text}
        resources:
          instance_count: 2
          instance_type: Standard_NC6
          shm_size: 2g
          properties: {k: v}
        distribution: {type: pytorch, process_count_per_instance: 4}
        limits: {timeout: 900}
        services:
          my_vscode: {type: vs_code}
          my_tensorboard: {type: tensor_board, log_dir: outputs/tblogs}
        identity: {type: user_identity}
        queue_settings: {job_tier: standard}
        """,
    )
    job = load_command_job(job_file)
    assert job.name == "my_job-01"
    assert job.experiment_name == "exp"
    assert job.description == "Multi-line\ndescription.\n"
    assert job.tags == {"hello": "world", "n": "1"}
    assert job.properties == {"p": "True"}
    assert job.environment_variables == {"A": "1", "B": "", "C": "text"}
    assert job.resources.instance_type == "Standard_NC6"
    assert job.resources.shm_size == "2g"
    assert job.distribution is not None
    assert (job.distribution.type, job.distribution.process_count_per_instance) == ("pytorch", 4)
    assert job.limits.timeout == 900
    assert job.services is not None and job.services["my_vscode"] == {"type": "vs_code"}
    assert job.identity == {"type": "user_identity"}
    assert job.queue_settings == {"job_tier": "standard"}
    _roundtrip(job)


def test_tensorflow_distribution(tmp_path: Path) -> None:
    job = load_command_job(
        _write(
            tmp_path,
            "job.yml",
            "command: echo\ndistribution: {type: tensorflow, worker_count: 2, "
            "parameter_server_count: 0}\n",
        )
    )
    assert job.distribution is not None
    assert (job.distribution.worker_count, job.distribution.parameter_server_count) == (2, 0)


def test_model_dump_round_trips_through_the_server_side_parser(tmp_path: Path) -> None:
    _write(tmp_path, "src/main.py", "")
    _write(tmp_path, "data.csv", "1\n")
    job_file = _write(
        tmp_path,
        "job.yml",
        """\
        code: src
        command: python main.py ${{inputs.a}} ${{inputs.b}} $[[${{inputs.c}}]] ${{outputs.o}}
        inputs:
          a: {type: uri_file, path: data.csv}
          b: "True"
          c: {type: number, optional: true}
          d: {type: boolean, value: "false"}
        outputs:
          o:
        environment: {image: python}
        """,
    )
    job = load_command_job(job_file)
    wire = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert wire["inputs"]["b"] == {"type": "string", "value": "True", "optional": False}
    assert wire["inputs"]["d"]["value"] is False
    again = parse_command_job(json.loads(json.dumps(wire)))
    assert again == job
    assert again.model_dump(mode="json", by_alias=True, exclude_none=True) == wire


def test_server_side_parse_leaves_local_paths_as_given() -> None:
    job = parse_command_job(
        {
            "code": "src",
            "command": "echo ${{inputs.x}}",
            "inputs": {"x": {"type": "uri_file", "path": "data/x.csv"}},
            "environment": "file:env.yml",
        }
    )
    assert job.code == "src"
    assert job.inputs["x"].path == "data/x.csv"
    assert job.environment == "file:env.yml"
    assert job.experiment_name is None


def test_parse_with_a_base_dir_resolves_and_applies_the_default_experiment(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    job = parse_command_job(
        {"code": "src", "command": "echo"}, base_dir=tmp_path, default_experiment="exp"
    )
    assert job.code == str(tmp_path / "src")
    assert job.experiment_name == "exp"
