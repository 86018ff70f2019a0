"""Jobs are MLflow runs: user code logs with the real mlflow client; the CLI reads it back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.e2e.harness import MillHome

TRAIN = """\
import argparse, mlflow
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

parser = argparse.ArgumentParser()
parser.add_argument("--C", type=float)
args = parser.parse_args()
mlflow.sklearn.autolog(log_models=False)
x, y = load_iris(return_X_y=True)
with mlflow.start_run():  # resumes the job's own run (MLFLOW_RUN_ID)
    model = LogisticRegression(C=args.C, max_iter=300).fit(x, y)
    mlflow.log_metric("accuracy", float(model.score(x, y)))
    for step in range(5):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    mlflow.set_tag("kind", "demo")
    with mlflow.start_run(nested=True, run_name="child"):
        mlflow.log_metric("child_metric", 1.0)
print("logged")
"""


def _job(folder: Path, c: float) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "train.py").write_text(TRAIN)
    (folder / "job.yml").write_text(
        "code: src\ncommand: python train.py --C ${{inputs.C}}\n"
        f"inputs:\n  C: {c}\nexperiment_name: tracked\n"
    )
    return folder / "job.yml"


def test_jobs_log_to_their_runs_and_the_cli_reads_them(mill: MillHome, tmp_path: Path) -> None:
    names = []
    for c in (0.01, 1.0):
        job_file = _job(tmp_path / f"c{c}", c)
        result = mill.cli("job", "create", "--file", str(job_file), "--stream")
        assert "logged" in result.stdout
        names.append(result.stdout.split("RunId: ", 1)[1].split()[0])
    weak, strong = names

    shown = mill.json("job", "show", "--name", strong)
    assert shown["params"]["C"] == "1.0"
    assert 0.9 < shown["metrics"]["accuracy"] <= 1.0
    assert shown["metrics"]["loss"] == 0.2
    assert "training_score" in shown["metrics"]  # from autolog

    history = mill.json("job", "metrics", "--name", strong, "--history", "loss")
    assert [p["step"] for p in history] == [0, 1, 2, 3, 4]
    assert history[0]["value"] == 1.0
    table = mill.cli("job", "metrics", "--name", strong).stdout
    assert "accuracy" in table and "loss" in table

    ordered = mill.json(
        "job", "list", "--experiment-name", "tracked", "--order-by", "metrics.accuracy DESC"
    )
    assert [j["name"] for j in ordered] == [strong, weak]
    best = mill.json("job", "list", "--filter", "metrics.accuracy > 0.9 and params.C = '1.0'")
    assert [j["name"] for j in best] == [strong]

    compared = mill.cli("job", "compare", weak, strong).stdout
    c_line = next(line for line in compared.splitlines() if " C " in f" {line} ")
    assert c_line.lstrip().startswith("*")  # C differs between the two jobs

    experiments = mill.json("experiment", "list")
    assert "tracked" in [e["name"] for e in experiments]
    assert {j["name"] for j in mill.json("experiment", "show", "--name", "tracked")["jobs"]} == set(
        names
    )


def test_the_workspace_tracking_uri_works_from_a_notebook(mill: MillHome, tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = mill.json("workspace", "show")["mlflow_tracking_uri"]
    assert uri.endswith("/workspaces/default")
    name = mill.submit("command: echo hi\nexperiment_name: from-notebook\n")
    assert mill.wait_job(name)["status"] == "Completed"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("from-notebook")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [name]
    assert runs[0].info.status == "FINISHED"
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        mlflow.log_metric("outside", 3.0)
    assert client.get_run(run.info.run_id).data.metrics == {"outside": 3.0}


def test_failed_and_canceled_jobs_end_their_runs(mill: MillHome) -> None:
    from mlflow.tracking import MlflowClient

    uri = mill.json("workspace", "show")["mlflow_tracking_uri"]
    failed = mill.submit("command: exit 3\n", folder="f")
    mill.wait_job(failed)
    queued = mill.submit("command: sleep 30\n", folder="q")
    mill.cli("job", "cancel", "--name", queued)
    client = MlflowClient(uri)
    assert client.get_run(failed).info.status == "FAILED"
    assert client.get_run(queued).info.status == "KILLED"


def test_tracking_bad_input(mill: MillHome) -> None:
    name = mill.submit("command: echo\n")
    mill.wait_job(name)
    bad_filter = mill.cli("job", "list", "--filter", "metrics.accuracy >>> 1", check=False)
    assert bad_filter.returncode == 2 and "Traceback" not in bad_filter.stderr
    missing = mill.cli("job", "metrics", "--name", name, "--history", "nope", check=False)
    assert missing.returncode == 1 and "no metric 'nope'" in missing.stderr
    one = mill.cli("job", "compare", name, check=False)
    assert one.returncode == 2 and "at least two" in one.stderr
    unknown = mill.cli("experiment", "show", "--name", "never", check=False)
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    assert json.loads(mill.cli("experiment", "list", "-o", "json").stdout)


def test_a_job_name_used_in_another_workspace_is_refused_clearly(mill: MillHome) -> None:
    mill.cli("workspace", "create", "--name", "second")
    mill.submit("command: 'true'\n", "--name", "shared_name", folder="one")
    clash = mill.cli(
        "job", "create", "--file", str(mill.home.parent / "one/job.yml"), "--name", "shared_name",
        "-w", "second", check=False,
    )  # fmt: skip
    assert clash.returncode == 1 and "already the id of an MLflow run" in clash.stderr


LOG_MODEL = """\
import mlflow, sklearn
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=300).fit(x, y)
with mlflow.start_run() as run:
    info = mlflow.sklearn.log_model(model, "model")
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    print("mlflow", mlflow.__version__, "uri", info.model_uri, "prediction", [int(p) for p in loaded.predict(x[:1])])
"""


def _log_model_job(folder: Path, environment: str) -> Path:
    (folder / "src").mkdir(parents=True, exist_ok=True)
    (folder / "src" / "log_model.py").write_text(LOG_MODEL)
    (folder / "job.yml").write_text(
        f"code: src\ncommand: python log_model.py\nexperiment_name: models\n{environment}"
    )
    return folder / "job.yml"


def test_log_model_inside_a_job_with_the_mlflow_3_client(mill: MillHome, tmp_path: Path) -> None:
    result = mill.cli(
        "job", "create", "--file", str(_log_model_job(tmp_path / "m3", "")), "--stream"
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("mlflow 3."))
    assert "prediction [0]" in line and ("models:/" in line or "runs:/" in line)
    stored = list(
        (mill.home / "workspaces/default/datastores/workspaceblobstore/mlflow-artifacts").rglob(
            "MLmodel"
        )
    )
    assert stored, "the model's files are on the workspace's default datastore"
    # The model is findable by its name from the job's run (a LoggedModel in MLflow 3).
    from mlflow.tracking import MlflowClient

    job = result.stdout.split("RunId: ", 1)[1].split()[0]
    client = MlflowClient(mill.json("workspace", "show")["mlflow_tracking_uri"])
    experiment = client.get_experiment_by_name("models")
    found = client.search_logged_models(
        experiment_ids=[experiment.experiment_id], filter_string=f"source_run_id = '{job}'"
    )
    assert [(m.name, m.source_run_id) for m in found] == [("model", job)]


def test_log_model_inside_a_job_with_an_mlflow_2_client(mill: MillHome, tmp_path: Path) -> None:
    conda = tmp_path / "m2" / "conda.yml"
    conda.parent.mkdir(parents=True)
    conda.write_text(
        "dependencies:\n  - python=3.11\n  - pip\n  - pip:\n"
        "      - mlflow-skinny==2.22.0\n      - scikit-learn==1.5.2\n      - pandas==2.2.3\n"
    )
    job = _log_model_job(
        tmp_path / "m2", "environment:\n  image: python:3.11\n  conda_file: conda.yml\n"
    )
    result = mill.cli("job", "create", "--file", str(job), "--stream", timeout=600)
    line = next(x for x in result.stdout.splitlines() if x.startswith("mlflow 2."))
    job = result.stdout.split("RunId: ", 1)[1].split()[0]
    assert "prediction [0]" in line and f"runs:/{job}/model" in line
    # MLflow 2's log_model records the model on the run (runs/log-model); a server without
    # the route makes the client warn and leaves no history.
    assert "metadata to the tracking server has failed" not in result.stdout + result.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mill.json("workspace", "show")["mlflow_tracking_uri"])
    history = client.get_run(job).data.tags["mlflow.log-model.history"]
    assert [m["artifact_path"] for m in json.loads(history)] == ["model"]


def test_model_metrics_datasets_and_multipart_against_a_real_server(
    mill: MillHome, tmp_path: Path, monkeypatch: Any
) -> None:
    import mlflow
    import numpy as np
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1024")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    uri = mill.json("workspace", "show")["mlflow_tracking_uri"]
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    mlflow.set_experiment("e2e-models")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (11 * 1024 * 1024))
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_numpy(np.arange(4), name="nums"), context="eval")
        model = mlflow.initialize_logged_model(name="scored")
        mlflow.log_metric("acc", 0.97, model_id=model.model_id)
        mlflow.log_artifact(str(big))
    exp = run.info.experiment_id
    assert [m.key for m in client.get_logged_model(model.model_id).metrics] == ["acc"]
    found = client.search_logged_models([exp], filter_string="metrics.acc > 0.9")
    assert [m.model_id for m in found] == [model.model_id]
    runs = client.search_runs([exp], "datasets.name = 'nums' AND datasets.context = 'eval'")
    assert [r.info.run_id for r in runs] == [run.info.run_id]
    sizes = {f.path: f.file_size for f in client.list_artifacts(run.info.run_id)}
    assert sizes["big.bin"] == 11 * 1024 * 1024
