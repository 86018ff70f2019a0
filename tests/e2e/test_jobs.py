"""Jobs through the real CLI, a real server subprocess and real job processes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tests.e2e.harness import EXAMPLES, MillHome


def test_hello_world_streams_and_completes(shared_mill: MillHome) -> None:
    result = shared_mill.cli(
        "job", "create", "--file", str(EXAMPLES / "hello-world/job.yml"), "--stream"
    )
    assert "hello world" in result.stdout
    assert "Status: Completed" in result.stdout


def test_sklearn_example_trains_and_its_outputs_download(
    shared_mill: MillHome, tmp_path: Path
) -> None:
    name = shared_mill.cli(
        "job",
        "create",
        "--file",
        str(EXAMPLES / "sklearn-iris/job.yml"),
        "--query",
        "name",
        "-o",
        "tsv",
    ).stdout.strip()
    shared_mill.cli("job", "stream", "--name", name)
    job = shared_mill.json("job", "show", "--name", name)
    assert job["status"] == "Completed"
    assert job["experiment_name"] == "iris"
    assert job["compute"] == "local"  # azureml:serverless runs on the built-in local compute
    assert (job["inputs"]["C"]["type"], job["inputs"]["C"]["value"]) == ("number", 0.8)
    assert job["inputs"]["iris_csv"]["path"].startswith(
        "azureml://datastores/workspaceblobstore/paths/LocalUpload/"
    )
    assert job["environment_status"] in ("built", "cache hit")
    assert len(job["environment_key"]) == 64
    shared_mill.cli("job", "download", "--name", name, "--all", "--download-path", str(tmp_path))
    metrics = json.loads((tmp_path / "artifacts/outputs/metrics.json").read_text())
    assert metrics["accuracy"] > 0.8 and metrics["C"] == 0.8
    with (tmp_path / "artifacts/outputs/model.pkl").open("rb") as f:
        model = pickle.load(f)
    assert list(model.predict([[5.1, 3.5, 1.4, 0.2]])) == ["setosa"]
    log = (tmp_path / "artifacts/user_logs/std_log.txt").read_text()
    assert "saved outputs/model.pkl" in log


def test_inputs_outputs_example_with_set_and_optional_fragment(
    shared_mill: MillHome, tmp_path: Path
) -> None:
    example = str(EXAMPLES / "inputs-outputs/job.yml")
    without = shared_mill.cli(
        "job", "create", "--file", example, "--stream", "--set", "inputs.greeting=hey"
    )
    assert without.stdout.count("hey! 4 lines, 29 words (short)") == 1
    name = shared_mill.cli(
        "job",
        "create",
        "--file",
        example,
        "--set",
        "inputs.repeat=3",
        "--set",
        "environment_variables.SUMMARY_STYLE=long",
        "--query",
        "name",
        "-o",
        "tsv",
    ).stdout.strip()
    shared_mill.cli("job", "stream", "--name", name)
    shared_mill.cli("job", "download", "--name", name, "--all", "--download-path", str(tmp_path))
    log = (tmp_path / "artifacts/user_logs/std_log.txt").read_text()
    assert log.count("hello! 4 lines, 29 words (long)") == 3
    assert json.loads((tmp_path / "named-outputs/report/summary.json").read_text()) == {
        "lines": 4,
        "words": 29,
    }
    assert (tmp_path / "named-outputs/word_count/word_count").read_text() == "29\n"
    assert (tmp_path / "artifacts/outputs/first_line.txt").read_text().startswith("The mill turns")


def test_same_code_is_uploaded_once(shared_mill: MillHome) -> None:
    example = str(EXAMPLES / "inputs-outputs/job.yml")
    first = shared_mill.json("job", "create", "--file", example)
    second = shared_mill.cli("job", "create", "--file", example)
    assert "Uploading" not in second.stderr  # every blob was already there
    assert json.loads(second.stdout)["code"] == first["code"]
    assert first["code"].startswith("snapshot:")


def test_distributed_pytorch_ranks(shared_mill: MillHome) -> None:
    result = shared_mill.cli(
        "job", "create", "--file", str(EXAMPLES / "distributed/job.yml"), "--stream"
    )
    lines = sorted(line for line in result.stdout.splitlines() if line.startswith("[rank"))
    assert len(lines) == 4
    assert "rank 3 of 4 local 1 node 1 master 127.0.0.1:" in lines[3]


def test_failing_job_exits_non_zero_with_the_reason(shared_mill: MillHome) -> None:
    yaml_text = "command: echo starting && python -c 'import sys; sys.exit(\"model diverged\")'\n"
    (shared_mill.home.parent / "fail").mkdir(exist_ok=True)
    path = shared_mill.home.parent / "fail" / "job.yml"
    path.write_text(yaml_text)
    result = shared_mill.cli(
        "job", "create", "--file", str(path), "--stream", "--name", "will_fail", check=False
    )
    assert result.returncode == 1
    assert "starting" in result.stdout
    assert "Error: job 'will_fail' ended Failed" in result.stderr
    assert "model diverged" in result.stderr
    assert "Traceback" not in result.stderr
    job = shared_mill.json("job", "show", "--name", "will_fail")
    assert job["status"] == "Failed" and job["exit_code"] == 1
    assert job["experiment_name"] == "fail"  # the YAML's folder name


def test_list_filters_archive_and_output_formats(shared_mill: MillHome) -> None:
    name = shared_mill.submit("command: echo listed\nexperiment_name: listing\ntags: {team: x}\n")
    shared_mill.wait_job(name)
    table = shared_mill.cli("job", "list", "--experiment-name", "listing").stdout
    assert table.splitlines()[0].split()[:3] == ["Name", "DisplayName", "Status"]
    assert name in table
    tsv = shared_mill.cli(
        "job", "list", "--experiment-name", "listing", "--query", "[].[name,status]", "-o", "tsv"
    )
    assert tsv.stdout.strip() == f"{name}\tCompleted"
    yaml_out = shared_mill.cli("job", "show", "--name", name, "-o", "yaml").stdout
    assert f"name: {name}" in yaml_out and "team: x" in yaml_out
    shared_mill.cli("job", "archive", "--name", name)
    assert name not in shared_mill.cli("job", "list", "--experiment-name", "listing").stdout
    archived = shared_mill.json("job", "list", "--archived-only")
    assert [j["name"] for j in archived] == [name]
    shared_mill.cli("job", "restore", "--name", name)
    assert name in shared_mill.cli("job", "list", "--experiment-name", "listing").stdout


def test_validate_does_not_run_anything(shared_mill: MillHome) -> None:
    before = len(shared_mill.json("job", "list", "--max-results", "1000"))
    result = shared_mill.cli("job", "validate", "--file", str(EXAMPLES / "hello-world/job.yml"))
    assert "is valid" in result.stderr
    assert len(shared_mill.json("job", "list", "--max-results", "1000")) == before


def test_job_names_are_unique(shared_mill: MillHome) -> None:
    shared_mill.submit("command: 'true'\n", "--name", "only_once")
    result = shared_mill.cli(
        "job",
        "create",
        "--file",
        str(shared_mill.home.parent / "job/job.yml"),
        "--name",
        "only_once",
        check=False,
    )
    assert result.returncode == 1 and "already exists" in result.stderr


def test_http_input_and_datastore_uri_input(shared_mill: MillHome, tmp_path: Path) -> None:
    import http.server
    import threading

    (tmp_path / "served.txt").write_text("from the web\n")
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/served.txt"
        first = shared_mill.submit(
            "command: cat ${{inputs.page}} && cp ${{inputs.page}} ${{outputs.saved}}/copy.txt\n"
            f"inputs:\n  page: {{type: uri_file, path: '{url}'}}\n"
            "outputs:\n  saved: {path: 'azureml://datastores/workspaceblobstore/paths/kept/${{name}}/'}\n"
        )
        job = shared_mill.wait_job(first)
        assert job["status"] == "Completed", job
        assert (
            job["outputs"]["saved"]["path"]
            == f"azureml://datastores/workspaceblobstore/paths/kept/{first}/"
        )
        uri = f"azureml://datastores/workspaceblobstore/paths/kept/{first}/copy.txt"
        second = shared_mill.submit(
            "command: cat ${{inputs.again}} && echo ${{inputs.direct}}\n"
            f"inputs:\n  again: {{type: uri_file, path: '{uri}', mode: download}}\n"
            f"  direct: {{type: uri_file, path: '{uri}', mode: direct}}\n"
        )
        assert shared_mill.wait_job(second)["status"] == "Completed"
        log = shared_mill.cli("job", "stream", "--name", second).stdout
        assert "from the web" in log and uri in log
    finally:
        server.shutdown()
