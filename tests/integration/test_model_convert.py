"""mill model convert through the API: sklearn and PyTorch -> ONNX, checked, registered."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from mill.services.context import Context
from mill.services.launch import resolve_uri
from mill.specs.model_formats import inspect_model

onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is in the dev extra")
pytest.importorskip("skl2onnx", reason="skl2onnx is in the dev extra")

pytestmark = pytest.mark.slow  # each conversion starts a Python that imports mlflow and torch

MODELS = "/api/v1/workspaces/default/models"


@pytest.fixture(scope="module")
def iris() -> tuple[Any, Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_iris(return_X_y=True, as_frame=True)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    return pipeline, x, y


@pytest.fixture(scope="module")
def mlflow_iris(iris: tuple[Any, Any, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    import mlflow.sklearn

    pipeline, x, _ = iris
    folder = tmp_path_factory.mktemp("mlflow") / "iris_model"
    mlflow.sklearn.save_model(pipeline, str(folder), input_example=x.head(5))
    return folder


def _register(api: TestClient, ctx: Context, name: str, local: Path, type_: str) -> dict[str, Any]:
    """Upload ``local`` the way the CLI does (into a new upload area), then create."""
    upload = api.post(f"{MODELS}/uploads", json={"filename": local.name}).json()
    target = resolve_uri(ctx, "default", upload["uri"])
    target.parent.mkdir(parents=True, exist_ok=True)
    if local.is_dir():
        shutil.copytree(local, target)
    else:
        shutil.copy2(local, target)
    created = api.post(MODELS, json={"name": name, "type": type_, "path": upload["uri"]})
    assert created.status_code == 201, created.text
    return dict(created.json())


def _convert(api: TestClient, name: str, version: str, **body: Any) -> Any:
    return api.post(f"{MODELS}/{name}/versions/{version}/convert", json={"to": "onnx", **body})


def _versions(api: TestClient, name: str) -> list[str]:
    return [v["version"] for v in api.get(MODELS, params={"name": name}).json()]


def test_mlflow_sklearn_pipeline_becomes_an_onnx_version_linked_to_it(
    api: TestClient, ctx: Context, mlflow_iris: Path, iris: tuple[Any, Any, Any]
) -> None:
    _register(api, ctx, "iris", mlflow_iris, "mlflow_model")
    answer = _convert(api, "iris", "1")
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (made["name"], made["version"], made["type"]) == ("iris", "2", "custom_model")
    assert made["lineage"]["parent"] == "azureml:iris:1"
    assert made["source"] == {"kind": "conversion", "model": "azureml:iris:1", "to": "onnx"}
    assert made["format"]["onnx"] == "model.onnx"
    report = made["conversion"]
    assert report["source"] == "azureml:iris:1"
    assert report["sample_from"] == "input_example" and report["samples"] == 5
    assert 0 <= report["max_abs_diff"] <= report["tolerance"]["atol"]
    assert isinstance(report["opset"], int)
    shown = api.get(f"{MODELS}/iris", params={"version": "2"}).json()
    assert shown["lineage"]["conversion"]["max_abs_diff"] == report["max_abs_diff"]

    # Our own check, on every row rather than the five the service compared.
    pipeline, x, _ = iris
    onnx_file = resolve_uri(ctx, "default", made["path"]) / "model.onnx"
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    label, proba = session.run(None, {"input": x.to_numpy(np.float32)})
    assert (label == pipeline.predict(x)).all()
    assert np.abs(proba - pipeline.predict_proba(x)).max() < 1e-4


def test_triton_repository_is_registered_with_a_config_from_the_graph(
    api: TestClient, ctx: Context, mlflow_iris: Path
) -> None:
    _register(api, ctx, "iris-t", mlflow_iris, "mlflow_model")
    records = [{"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, "petal length (cm)": 5.2,
                "petal width (cm)": 2.3}]  # fmt: skip
    answer = _convert(api, "iris-t", "1", triton=True, sample_input=records)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert made["type"] == "triton_model"
    assert made["conversion"]["sample_from"] == "request" and made["conversion"]["samples"] == 1
    [triton] = made["format"]["models"]
    assert triton["name"] == "iris-t" and triton["backend"] == "onnxruntime_onnx"
    assert [t["name"] for t in triton["inputs"]] == ["input"]
    assert [t["name"] for t in triton["outputs"]] == ["label", "probabilities"]
    local = resolve_uri(ctx, "default", made["path"])
    assert (local / "iris-t" / "1" / "model.onnx").is_file()
    assert inspect_model("triton_model", local).summary["models"][0]["versions"] == ["1"]


def test_pickled_estimator_converts_with_a_given_sample_and_needs_one(
    api: TestClient, ctx: Context, tmp_path: Path
) -> None:
    from sklearn.ensemble import RandomForestRegressor

    rng = np.random.default_rng(1)
    x = rng.random((40, 3))
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(x, x.sum(axis=1))
    file = tmp_path / "forest.pkl"
    file.write_bytes(pickle.dumps(forest))
    _register(api, ctx, "forest", file, "custom_model")

    missing = _convert(api, "forest", "1")
    assert missing.status_code == 400
    assert "no sample input" in missing.json()["message"]
    assert "--sample-input" in missing.json()["hint"]

    answer = _convert(api, "forest", "1", sample_input={"inputs": x[:6].tolist()})
    assert answer.status_code == 201, answer.text
    assert answer.json()["conversion"]["samples"] == 6
    assert _versions(api, "forest") == ["2", "1"]


@pytest.mark.parametrize(
    ("what", "expected"),
    [
        ("text", "is not a file it can load"),
        ("unsupported", "no ONNX converter for sklearn.semi_supervised"),
        ("not_an_estimator", "not a scikit-learn estimator"),
    ],
)
def test_a_model_that_cannot_convert_is_refused_and_nothing_is_registered(
    api: TestClient, ctx: Context, tmp_path: Path, what: str, expected: str
) -> None:
    from sklearn.semi_supervised import LabelSpreading

    if what == "text":
        file = tmp_path / "notes.txt"
        file.write_text("not a model\n")
    else:
        file = tmp_path / "model.pkl"
        x = np.random.default_rng(0).random((20, 3))
        thing: Any = {"weights": [1, 2, 3]}
        if what == "unsupported":
            thing = LabelSpreading().fit(x, (x[:, 0] > 0.5).astype(int))
        file.write_bytes(pickle.dumps(thing))
    _register(api, ctx, "bad", file, "custom_model")
    answer = _convert(api, "bad", "1", sample_input=[[0.1, 0.2, 0.3]])
    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("cannot convert model azureml:bad:1")
    assert expected in answer.json()["message"]
    assert _versions(api, "bad") == ["1"]
    uploads = resolve_uri(ctx, "default", "azureml://datastores/workspaceblobstore/paths/")
    assert not list((uploads / "mlflow-artifacts/registry/.uploads").iterdir())


def test_bad_requests_are_refused(api: TestClient, ctx: Context, mlflow_iris: Path) -> None:
    _register(api, ctx, "iris-b", mlflow_iris, "mlflow_model")
    assert _convert(api, "iris-b", "1", to="tensorrt").status_code == 400
    assert _convert(api, "iris-b", "1", colour="red").status_code == 400
    assert _convert(api, "iris-b", "9").status_code == 404
    short = _convert(api, "iris-b", "1", sample_input={"columns": ["a"], "data": [[1, 2]]})
    assert short.status_code == 400
    assert _versions(api, "iris-b") == ["1"]


def test_pytorch_models_convert(api: TestClient, ctx: Context, tmp_path: Path) -> None:
    try:
        import torch
    except ImportError:
        print("skipped: torch is not installed (pip install torch==2.13.0 takes the CPU wheel)")
        pytest.skip("torch is not installed; PyTorch conversion needs it")
    import mlflow.pytorch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    example = np.random.default_rng(0).random((3, 4)).astype(np.float32)
    mlflow.pytorch.save_model(net, str(tmp_path / "net"), input_example=example)
    scripted = tmp_path / "net.pt"
    torch.jit.script(net).save(str(scripted))
    _register(api, ctx, "net", tmp_path / "net", "mlflow_model")
    _register(api, ctx, "net-ts", scripted, "custom_model")

    logged = _convert(api, "net", "1", triton=True)
    assert logged.status_code == 201, logged.text
    assert logged.json()["conversion"]["framework"] == "pytorch"
    assert logged.json()["conversion"]["max_abs_diff"] <= 1e-4
    assert logged.json()["format"]["models"][0]["max_batch_size"] == 64

    answer = _convert(api, "net-ts", "1", sample_input=example.tolist())
    assert answer.status_code == 201, answer.text
    onnx_file = resolve_uri(ctx, "default", answer.json()["path"]) / "model.onnx"
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    rows = np.random.default_rng(5).random((7, 4)).astype(np.float32)  # another batch size
    [got] = session.run(None, {"input": rows})
    with torch.no_grad():
        want = net(torch.from_numpy(rows)).numpy()
    assert np.abs(got - want).max() < 1e-4
