"""Artifacts and MLflow 3 LoggedModels end to end with the real client and scikit-learn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from sklearn.linear_model import LogisticRegression


def test_artifacts_roundtrip(server: Any, tmp_path: Path) -> None:
    mlflow.set_tracking_uri(server.url)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "a.txt").write_text("hello")
    (source / "sub" / "b.bin").write_bytes(b"\0" * 3_000_000)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(source), "data")
        mlflow.log_text("text", "notes/n.txt")
    client = MlflowClient(server.url)
    listed = {f.path: f.is_dir for f in client.list_artifacts(run.info.run_id, "data")}
    assert listed == {"data/a.txt": False, "data/sub": True}
    local = client.download_artifacts(run.info.run_id, "data", str(tmp_path / "out"))
    assert (Path(local) / "sub" / "b.bin").stat().st_size == 3_000_000
    assert mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/n.txt") == "text"
    old = requests.get(
        f"{server.url}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run.info.run_id, "path": "data"},
        timeout=30,
    ).json()
    assert {f["path"] for f in old["files"]} == {"data/a.txt", "data/sub"}


@pytest.mark.parametrize("path", ["../x", "0/../../x", "/etc/passwd", "a/%2e%2e/%2e%2e/x"])
def test_artifact_paths_cannot_escape(server: Any, path: str) -> None:
    url = f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{path}"
    answer = requests.put(url, data=b"x", timeout=30)
    assert answer.status_code in (400, 404), answer.text
    listing = requests.get(
        f"{server.url}/api/2.0/mlflow-artifacts/artifacts", params={"path": "../"}, timeout=30
    )
    assert listing.status_code == 400
    assert listing.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_sklearn_log_model_and_load(server: Any) -> None:
    mlflow.set_tracking_uri(f"{server.url}/workspaces/default")
    mlflow.set_experiment("models")
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with mlflow.start_run() as run:
        model = LogisticRegression().fit(x, y)
        info = mlflow.sklearn.log_model(model, name="model")
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert list(loaded.predict(x)) == [0, 0, 1, 1]
    by_id = mlflow.pyfunc.load_model(f"models:/{info.model_id}")
    assert list(by_id.predict(x)) == [0, 0, 1, 1]
    logged = MlflowClient().get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2 or str(logged.status).endswith("READY")


def test_log_model_records_the_run_model_history(server: Any) -> None:
    """``runs/log-model``: what MLflow 2 clients (and MLflow 3's Spark flavor) call after
    saving a model's files; without it they warn "Logging model metadata to the tracking
    server has failed" and the run has no ``mlflow.log-model.history``."""
    client = MlflowClient(server.url)
    run = client.create_run("0").info.run_id
    for path in ("model", "again"):
        metadata = Model(artifact_path=path, run_id=run, flavors={"sklearn": {"pickled": 1}})
        client._record_logged_model(run, metadata)  # what mlflow 2's log_model sends
    history = json.loads(client.get_run(run).data.tags["mlflow.log-model.history"])
    assert [m["artifact_path"] for m in history] == ["model", "again"]
    assert all(m["flavors"] == {"sklearn": {"pickled": 1}} and m["run_id"] == run for m in history)
    client.delete_run(run)
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client._record_logged_model(run, Model(artifact_path="late", run_id=run, flavors={}))


def test_log_model_refuses_bad_model_json(server: Any) -> None:
    run = MlflowClient(server.url).create_run("0").info.run_id
    url = f"{server.url}/api/2.0/mlflow/runs/log-model"
    for model_json, expected in (
        ("{not json", "Malformed model info"),
        ("[1, 2]", "Malformed model info"),
        ('{"artifact_path": "m"}', "missing mandatory fields: ['flavors', 'run_id'"),
    ):
        answer = requests.post(url, json={"run_id": run, "model_json": model_json}, timeout=30)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert expected in answer.json()["message"]
    answer = requests.post(url, json={"run_id": run}, timeout=30)
    assert answer.status_code == 400 and "model_json" in answer.json()["message"]
    assert "mlflow.log-model.history" not in MlflowClient(server.url).get_run(run).data.tags


def test_autolog(server: Any) -> None:
    mlflow.set_tracking_uri(server.url)
    mlflow.sklearn.autolog(log_models=False)
    try:
        x = np.array([[0.0], [1.0], [2.0], [3.0]])
        with mlflow.start_run() as run:
            LogisticRegression(C=0.5).fit(x, np.array([0, 0, 1, 1]))
    finally:
        mlflow.sklearn.autolog(disable=True)
    data = MlflowClient(server.url).get_run(run.info.run_id).data
    assert data.params["C"] == "0.5"
    assert "training_accuracy_score" in data.metrics
