"""LoggedModel metrics, dataset filters, model artifacts and multipart uploads, with the real
mlflow client, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.exceptions import MlflowException

from mill.tracking.multipart import ABANDONED_AFTER_S


@pytest.fixture
def client(server: Any) -> MlflowClient:
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(server.url)


def _dataset(name: str, digest: str, context: str) -> DatasetInput:
    data = Dataset(name=name, digest=digest, source_type="local", source="/tmp/x")
    return DatasetInput(data, tags=[InputTag("mlflow.data.context", context)])


def test_metrics_logged_with_a_model_id_are_the_models(client: MlflowClient) -> None:
    exp = client.create_experiment("model-metrics")
    run = client.create_run(exp).info.run_id
    good = client.create_logged_model(exp, name="good", source_run_id=run)
    bad = client.create_logged_model(exp, name="bad", source_run_id=run)
    plain = client.create_logged_model(exp, name="plain")
    client.log_metric(run, "accuracy", 0.95, step=1, model_id=good.model_id)
    client.log_metric(run, "accuracy", 0.5, model_id=bad.model_id, dataset_name="eval",
                      dataset_digest="d1")  # fmt: skip
    client.log_batch(
        run,
        metrics=[
            Metric("f1", 0.7, 1000, 0, model_id=good.model_id, dataset_name="eval",
                   dataset_digest="d1"),
            Metric("f1", 0.9, 2000, 1, model_id=bad.model_id, dataset_name="test",
                   dataset_digest="d2"),
            Metric("loss", 0.1, 1000, 0),
        ],
    )  # fmt: skip
    got = client.get_logged_model(good.model_id)
    assert {(m.key, m.value, m.step) for m in got.metrics} == {
        ("accuracy", 0.95, 1),
        ("f1", 0.7, 0),
    }
    f1 = next(m for m in got.metrics if m.key == "f1")
    assert (f1.dataset_name, f1.dataset_digest, f1.run_id) == ("eval", "d1", run)
    # The run has the points too (latest by step); a plain metric is no model's.
    assert client.get_run(run).data.metrics == {"accuracy": 0.95, "f1": 0.9, "loss": 0.1}
    assert client.get_logged_model(plain.model_id).metrics == []

    def names(**kw: Any) -> list[str]:
        return [m.name for m in client.search_logged_models([exp], **kw)]

    assert names(filter_string="metrics.accuracy > 0.9") == ["good"]
    assert names(filter_string="metrics.f1 >= 0.7 AND name != 'bad'") == ["good"]
    assert names(order_by=[{"field_name": "metrics.f1", "ascending": False}]) == [
        "bad", "good", "plain",
    ]  # fmt: skip
    assert names(order_by=[{"field_name": "metrics.f1", "ascending": True}])[:2] == ["good", "bad"]
    assert names(order_by=[{"field_name": "name"}]) == ["bad", "good", "plain"]
    assert sorted(names(datasets=[{"dataset_name": "eval"}])) == ["bad", "good"]
    assert names(datasets=[{"dataset_name": "eval", "dataset_digest": "d2"}]) == []
    assert names(filter_string="metrics.f1 > 0.8", datasets=[{"dataset_name": "eval"}]) == []
    assert names(filter_string="metrics.f1 > 0.8", datasets=[{"dataset_name": "test"}]) == ["bad"]
    page = client.search_logged_models([exp], max_results=2, order_by=[{"field_name": "name"}])
    assert [m.name for m in page] == ["bad", "good"] and page.token
    rest = client.search_logged_models([exp], max_results=2, page_token=page.token,
                                       order_by=[{"field_name": "name"}])  # fmt: skip
    assert [m.name for m in rest] == ["plain"]
    with pytest.raises(MlflowException) as info:
        client.log_metric(run, "x", 1.0, model_id="m-missing")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException):
        client.search_logged_models([exp], order_by=[{"field_name": "params.x"}])


def test_fluent_log_metric_with_model_id(client: MlflowClient) -> None:
    mlflow.set_experiment("fluent-models")
    with mlflow.start_run():
        model = mlflow.initialize_logged_model(name="fluent")
        mlflow.log_metric("score", 3.0, model_id=model.model_id)
        mlflow.log_metrics({"a": 1.0, "b": 2.0}, model_id=model.model_id)
    assert {m.key: m.value for m in client.get_logged_model(model.model_id).metrics} == {
        "score": 3.0, "a": 1.0, "b": 2.0,
    }  # fmt: skip


def test_search_runs_by_dataset(client: MlflowClient) -> None:
    exp = client.create_experiment("datasets")
    train = client.create_run(exp).info.run_id
    client.log_inputs(train, [_dataset("iris", "abc", "training"), _dataset("wine", "w1", "eval")])
    other = client.create_run(exp).info.run_id
    client.log_inputs(other, [_dataset("digits", "dd", "eval")])
    client.create_run(exp)  # no datasets at all

    def ids(text: str) -> set[str]:
        return {r.info.run_id for r in client.search_runs([exp], text)}

    assert ids("datasets.name = 'iris'") == {train}
    assert ids("datasets.digest IN ('dd', 'zz')") == {other}
    assert ids("datasets.context = 'eval'") == {train, other}
    assert ids("datasets.context = 'training' AND datasets.name = 'wine'") == {train}
    assert ids("datasets.name LIKE 'di%'") == {other}
    assert ids("datasets.name != 'iris'") == {train, other}  # any input other than iris
    # The runs found carry their inputs, in the order logged, as get_run gives them.
    (found,) = client.search_runs([exp], "datasets.name = 'iris'")
    for run in (found, client.get_run(train)):
        inputs = run.inputs.dataset_inputs
        assert [(i.dataset.name, i.dataset.digest) for i in inputs] == [
            ("iris", "abc"),
            ("wine", "w1"),
        ]
        assert [t.value for i in inputs for t in i.tags] == ["training", "eval"]
    with pytest.raises(MlflowException) as info:
        client.search_runs([exp], "datasets.source = 'x'")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


def test_fluent_log_input_is_searchable(client: MlflowClient) -> None:
    mlflow.set_experiment("fluent-datasets")
    with mlflow.start_run() as run:
        mlflow.log_input(mlflow.data.from_numpy(np.arange(6), name="numbers"), context="train")
    exp = run.info.experiment_id
    found = client.search_runs([exp], "datasets.name = 'numbers' AND datasets.context = 'train'")
    assert [r.info.run_id for r in found] == [run.info.run_id]


def test_logged_model_artifacts(client: MlflowClient, server: Any, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment("model-artifacts")
    x, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(LogisticRegression().fit(x, y), name="clf")
    model_id = info.model_id
    base = f"{server.url}/api/2.0/mlflow/logged-models/{model_id}/artifacts"
    listed = requests.get(f"{base}/directories", timeout=30).json()
    assert "MLmodel" in {f["path"] for f in listed["files"]}
    assert listed["root_uri"].endswith(f"/models/{model_id}/artifacts")
    assert {f.path for f in client.list_logged_model_artifacts(model_id)} >= {"MLmodel"}
    mlmodel = requests.get(f"{base}/files", params={"artifact_file_path": "MLmodel"}, timeout=30)
    assert mlmodel.status_code == 200 and b"flavors" in mlmodel.content
    escape = requests.get(f"{base}/files", params={"artifact_file_path": "../../x"}, timeout=30)
    assert escape.status_code == 400
    nested = requests.get(f"{base}/directories", params={"artifact_directory_path": "../.."},
                          timeout=30)  # fmt: skip
    assert nested.status_code == 400
    local = mlflow.artifacts.download_artifacts(f"models:/{model_id}", dst_path=str(tmp_path))
    assert (Path(local) / "MLmodel").is_file()
    loaded = mlflow.sklearn.load_model(f"models:/{model_id}")
    assert list(loaded.predict(x)) == [0, 0, 1, 1]


def test_multipart_upload_through_the_proxy(
    client: MlflowClient, server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024))
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    parts: list[int] = []
    upload_part = HttpArtifactRepository._upload_part

    def counting(credential: Any, **kw: Any) -> Any:
        parts.append(credential.part_number)
        return upload_part(credential=credential, **kw)

    monkeypatch.setattr(HttpArtifactRepository, "_upload_part", staticmethod(counting))
    big = tmp_path / "big.bin"
    payload = np.random.default_rng(0).bytes(12 * 1024 * 1024 + 7)
    big.write_bytes(payload)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(big), "blobs")
    assert sorted(parts) == [1, 2, 3], "the client took the multipart path"
    listed = client.list_artifacts(run.info.run_id, "blobs")
    assert [(f.path, f.file_size) for f in listed] == [("blobs/big.bin", len(payload))]
    back = client.download_artifacts(run.info.run_id, "blobs/big.bin", str(tmp_path / "out"))
    assert Path(back).read_bytes() == payload
    staged = list(server.ctx.settings.home.rglob(".*.mpu/*"))
    assert not staged, "staged parts are cleaned up"


def test_multipart_routes_refuse_bad_paths_and_ids(server: Any) -> None:
    mpu = f"{server.url}/api/2.0/mlflow-artifacts/mpu"
    for path, name in [
        ("../up", "f.bin"),
        ("a/%2e%2e/%2e%2e/up", "f.bin"),
        ("a", ".."),
        ("a", "d/"),
    ]:
        answer = requests.post(f"{mpu}/create/{path}", json={"path": name, "num_parts": 1},
                               timeout=30)  # fmt: skip
        assert answer.status_code in (400, 404), (path, name, answer.text)
    created = requests.post(f"{mpu}/create/0/r/artifacts", json={"path": "/x/f.bin",
                            "num_parts": 2}, timeout=30).json()  # fmt: skip
    upload_id = created["upload_id"]
    assert [c["part_number"] for c in created["credentials"]] == [1, 2]
    assert requests.put(f"{mpu}/upload/{'0' * 32}/1", data=b"x", timeout=30).status_code == 404
    assert requests.put(f"{mpu}/upload/..%2F..%2Fx/1", data=b"x", timeout=30).status_code in (
        400, 404,
    )  # fmt: skip
    assert requests.put(f"{mpu}/upload/{upload_id}/0", data=b"x", timeout=30).status_code == 400
    requests.put(created["credentials"][0]["url"], data=b"ab", timeout=30).raise_for_status()
    moved = requests.post(f"{mpu}/complete/0/r/other", json={"path": "f.bin",
                          "upload_id": upload_id, "parts": [{"part_number": 1}]}, timeout=30)  # fmt: skip
    assert moved.status_code == 400
    short = requests.post(f"{mpu}/complete/0/r/artifacts", json={"path": "f.bin",
                          "upload_id": upload_id, "parts": [{"part_number": 1},
                          {"part_number": 2}]}, timeout=30)  # fmt: skip
    assert short.status_code == 400 and "never received" in short.json()["message"]
    aborted = requests.post(f"{mpu}/abort/0/r/artifacts", json={"path": "f.bin",
                            "upload_id": upload_id}, timeout=30)  # fmt: skip
    assert aborted.status_code == 200
    assert requests.put(created["credentials"][1]["url"], data=b"x", timeout=30).status_code == 404


def test_abandoned_multipart_uploads_are_removed_by_the_next_create(server: Any) -> None:
    mpu = f"{server.url}/api/2.0/mlflow-artifacts/mpu"
    body = {"path": "f.bin", "num_parts": 2}
    stale = requests.post(f"{mpu}/create/0/r/artifacts", json=body, timeout=30).json()
    requests.put(stale["credentials"][0]["url"], data=b"ab", timeout=30).raise_for_status()
    fresh = requests.post(f"{mpu}/create/0/r/artifacts", json=body, timeout=30).json()
    staging = next(server.ctx.settings.home.rglob(".*.mpu"))
    old = time.time() - ABANDONED_AFTER_S - 60
    for path in [staging / stale["upload_id"], *(staging / stale["upload_id"]).iterdir()]:
        os.utime(path, (old, old))
    requests.post(f"{mpu}/create/0/r/artifacts", json=body, timeout=30).raise_for_status()
    left = {p.name for p in staging.iterdir()}
    assert stale["upload_id"] not in left  # abandoned a day ago: gone
    assert fresh["upload_id"] in left  # in progress: kept
    assert requests.put(stale["credentials"][1]["url"], data=b"x", timeout=30).status_code == 404
