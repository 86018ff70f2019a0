"""Bad input through the real CLI: one clear error, the right exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.harness import MillHome

CASES = [
    # (YAML text or None for no file, extra args, exit code, texts the error must contain)
    (None, [], 2, ["job.yml", "not found"]),
    ("command: echo\n  bad: [\n", [], 2, ["job.yml:2", "YAML"]),
    ("command: echo\ncomand: typo\n", [], 2, ["job.yml:2", "comand", "did you mean"]),
    (
        "command: echo\ninputs:\n  lr:\n    type: float\n    value: 1\n",
        [],
        2,
        ["job.yml:4", "inputs.lr.type", "'float'", "uri_file"],
    ),
    ("command: echo ${{inputs.missing}}\n", [], 2, ["job.yml:1", "command", "inputs.missing"]),
    ("command: echo\ncode: ./nope\n", [], 2, ["job.yml:2", "code", "nope"]),
    (
        "command: echo\nresources:\n  instance_count: zero\n",
        [],
        2,
        ["job.yml:3", "resources.instance_count", "'zero'"],
    ),
    ("command: echo\n", ["--set", "inputs"], 2, ["--set", "inputs"]),
    ("command: echo\n", ["--set", "command.deeper=1"], 2, ["command.deeper"]),
    ("command: echo\ntype: pipeline\njobs: {}\n", [], 2, ["job.yml:2", "pipeline"]),
    ("command: echo\ncompute: azureml:nowhere\n", [], 2, ["compute 'nowhere' not found", "local"]),
    ("command: echo\nresources:\n  instance_count: 500\n", [], 2, ["max_instances"]),
    ("command: echo\nlimits:\n  timeout: -5\n", [], 2, ["limits.timeout"]),
    (
        "command: echo\nenvironment: < your environment name >\n",
        [],
        2,
        ["job.yml:2", "environment"],
    ),
    ("- just\n- a list\n", [], 2, ["job.yml"]),
    (
        "command: echo\ninputs:\n  d:\n    type: uri_file\n    path: missing.csv\n",
        [],
        2,
        ["job.yml:5", "inputs.d.path", "missing.csv"],
    ),
    (
        "command: echo\ndistribution:\n  type: horovod\n",
        [],
        2,
        ["job.yml:3", "distribution.type", "pytorch"],
    ),
    ("command: echo\n", ["--name", "bad name!"], 2, ["job name", "bad name!"]),
]


@pytest.mark.parametrize(("yaml_text", "args", "code", "texts"), CASES)
def test_bad_job_files(
    shared_mill: MillHome,
    tmp_path: Path,
    yaml_text: str | None,
    args: list[str],
    code: int,
    texts: list[str],
) -> None:
    path = tmp_path / "job.yml"
    if yaml_text is not None:
        path.write_text(yaml_text)
    result = shared_mill.cli("job", "create", "--file", str(path), *args, check=False, cwd=tmp_path)
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    for text in texts:
        assert text in result.stderr, f"{text!r} not in: {result.stderr}"
    assert (
        shared_mill.json("job", "list", "--query", "length(@)", "--max-results", "1000") is not None
    )


USAGE = [
    (["job", "show"], 2, "Missing option"),
    (["job", "explode"], 2, "No such command"),
    (["nothing"], 2, "No such command"),
    (["job", "list", "-o", "xml"], 2, "Invalid value"),
    (["job", "list", "--query", "[?"], 2, "invalid --query"),
    (["job", "show", "--name", "nope"], 1, "job 'nope' not found"),
    (
        ["job", "download", "--name", "x", "--all", "--output-name", "y"],
        2,
        "either --output-name or --all",
    ),
    (["compute", "create", "--name", "c", "--max-instances", "many"], 2, "Invalid value"),
    (["compute", "create", "--name", "c-x", "--max-instances", "0"], 2, "at least 1"),
    (["workspace", "show", "-w", "ghost"], 1, "workspace 'ghost' not found"),
    (["workspace", "create", "--name", "x y"], 2, "invalid workspace name"),
    (["workspace", "create", "--name", "t", "--tags", "novalue"], 2, "expected key=value"),
]


@pytest.mark.parametrize(("args", "code", "text"), USAGE)
def test_usage_errors(shared_mill: MillHome, args: list[str], code: int, text: str) -> None:
    result = shared_mill.cli(*args, check=False)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(shared_mill: MillHome) -> None:
    quiet = shared_mill.cli("job", "show", "--name", "nope", check=False)
    loud = shared_mill.cli("job", "show", "--name", "nope", "--debug", check=False)
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr and "NotFoundError" in loud.stderr
    assert loud.returncode == quiet.returncode == 1


def test_unknown_output_name_on_download(shared_mill: MillHome, tmp_path: Path) -> None:
    name = shared_mill.submit("command: echo hi\n")
    shared_mill.wait_job(name)
    result = shared_mill.cli(
        "job",
        "download",
        "--name",
        name,
        "--output-name",
        "model",
        "--download-path",
        str(tmp_path),
        check=False,
    )
    assert result.returncode == 2
    assert "no output 'model'" in result.stderr and "artifacts" in result.stderr
