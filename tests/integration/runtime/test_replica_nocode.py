"""No-code deployments in a real replica process: MLflow, ONNX and Triton (ONNX backend),
with their plans made by the control plane's ``mill.serving.model_plans``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.replica_client import ReplicaClient, start_replica

from mill.errors import NotSupportedError, SpecError
from mill.serving.model_plans import deployment_kind, replica_model_fields

pytest.importorskip("sklearn")
pytest.importorskip("onnxruntime")

COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def iris(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A LogisticRegression saved as an MLflow model and as model.onnx; its predictions."""
    import mlflow.sklearn
    import pandas as pd
    from mlflow.models import infer_signature
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("iris")
    x, y = load_iris(return_X_y=True, as_frame=True)
    x.columns = COLUMNS
    model = LogisticRegression(max_iter=1000).fit(x, y)
    mlflow.sklearn.save_model(
        model,
        str(root / "mlflow-model"),
        signature=infer_signature(x, model.predict(x)),
        input_example=x.head(2),
        pip_requirements=["scikit-learn"],  # skips inferring requirements (slow)
    )
    onnx = convert_sklearn(
        model,
        initial_types=[("float_input", FloatTensorType([None, 4]))],
        options={id(model): {"zipmap": False}},
        target_opset=17,
    )
    (root / "m").mkdir()
    (root / "m" / "model.onnx").write_bytes(onnx.SerializeToString())
    expected = model.predict(pd.DataFrame(ROWS, columns=COLUMNS)).tolist()
    return {"root": root, "expected": expected, "onnx": onnx.SerializeToString()}


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[ReplicaClient]]:
    started: list[ReplicaClient] = []
    yield started
    for replica in started:
        replica.stop()


def _serve(tmp_path: Path, started: list[ReplicaClient], plan: dict[str, Any]) -> ReplicaClient:
    replica = start_replica(tmp_path, plan)
    started.append(replica)
    replica.wait_ready()
    return replica


def test_mlflow_model_scored_in_every_form(
    iris: dict[str, Any], tmp_path: Path, replicas: list[ReplicaClient]
) -> None:
    path = iris["root"] / "mlflow-model"
    kind = deployment_kind("mlflow_model", path, has_code=False)
    replica = _serve(tmp_path, replicas, {"kind": kind, **replica_model_fields(kind, path)})
    expected = iris["expected"]
    split = {"input_data": {"columns": COLUMNS, "index": [0, 1], "data": ROWS}}
    rows = {"input_data": ROWS}
    records = {"input_data": [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]}
    columns = {"input_data": {c: [r[i] for r in ROWS] for i, c in enumerate(COLUMNS)}}
    for body in (split, rows, records, columns):
        answer = replica.post("/score", body)
        assert (answer.status, answer.json()) == (200, expected), body
    # Integers are cast to the signature's double columns.
    assert replica.post("/score", {"input_data": [[5, 3, 1, 0]]}).status == 200
    mlflow_split = {"dataframe_split": {"columns": COLUMNS, "data": ROWS}}
    assert replica.post("/score", mlflow_split).json() == {"predictions": expected}

    renamed = {"input_data": {"columns": [*COLUMNS[:3], "petal_size"], "data": ROWS}}
    missing = replica.post("/score", renamed)
    assert missing.status == 400 and "petal_width" in missing.json()["error"]
    short = replica.post("/score", {"input_data": [r[:3] for r in ROWS]})
    assert short.status == 400 and "row 0 has 3 values" in short.json()["error"]
    text = replica.post("/score", {"input_data": [["wide", 3.5, 1.4, 0.2]]})
    assert text.status == 400 and "sepal_length" in text.json()["error"]
    malformed = replica.post("/score", "{'input_data': ")
    assert malformed.status == 400 and "not valid JSON" in malformed.json()["error"]


def test_onnx_model_scored_by_score_and_kserve_v2(
    iris: dict[str, Any], tmp_path: Path, replicas: list[ReplicaClient]
) -> None:
    path = iris["root"] / "m"
    kind = deployment_kind("custom_model", path, has_code=False)
    assert kind == "onnx"
    replica = _serve(tmp_path, replicas, {"kind": kind, **replica_model_fields(kind, path)})
    expected = iris["expected"]
    for body in ({"data": ROWS}, {"input_data": ROWS}, {"inputs": {"float_input": ROWS}}):
        answer = replica.post("/score", body)
        assert answer.status == 200, answer.body
        assert answer.json()["label"] == expected
        assert len(answer.json()["probabilities"][0]) == 3

    flat = [v for row in ROWS for v in row]
    v2 = {
        "id": "r1",
        "inputs": [{"name": "float_input", "shape": [2, 4], "datatype": "FP32", "data": flat}],
    }
    answer = replica.post("/v2/models/m/infer", v2)
    assert answer.status == 200, answer.body
    result = answer.json()
    assert (result["model_name"], result["id"]) == ("m", "r1")
    label = next(o for o in result["outputs"] if o["name"] == "label")
    assert label == {"name": "label", "datatype": "INT64", "shape": [2], "data": expected}
    assert replica.post("/v2/models/m/versions/1/infer", v2).status == 200
    assert replica.post("/v2/models/other/infer", v2).status == 404

    metadata = replica.get("/v2/models/m").json()
    assert metadata["inputs"] == [{"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}]
    assert replica.get("/v2/health/ready").json() == {"ready": True}
    assert replica.get("/v2/health/live").status == 200

    wide = replica.post("/score", {"data": [[1, 2, 3]]})
    assert wide.status == 400 and "float_input" in wide.json()["error"]
    words = replica.post("/score", {"data": [["a", "b", "c", "d"]]})
    assert words.status == 400 and "FP32" in words.json()["error"]


TRITON_CONFIG = """
name: "m"
backend: "onnxruntime"
max_batch_size: 8
input [
  {
    name: "float_input"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output [
  { name: "label" data_type: TYPE_INT64 dims: [ 1 ] },
  { name: "probabilities" data_type: TYPE_FP32 dims: [ 3 ] }
]
"""


def test_triton_repository_checks_names_types_and_shapes(
    iris: dict[str, Any], tmp_path: Path, replicas: list[ReplicaClient]
) -> None:
    repo = tmp_path / "repo"
    (repo / "m" / "1").mkdir(parents=True)
    (repo / "m" / "config.pbtxt").write_text(TRITON_CONFIG)
    (repo / "m" / "1" / "model.onnx").write_bytes(iris["onnx"])
    fields = replica_model_fields("triton", repo)
    assert fields["triton_models"][0]["onnx_file"] == "m/1/model.onnx"
    assert deployment_kind("triton_model", repo, has_code=False) == "triton"
    replica = _serve(tmp_path, replicas, {"kind": "triton", **fields})

    flat = [v for row in ROWS for v in row]
    good = {"name": "float_input", "shape": [2, 4], "datatype": "FP32", "data": flat}
    answer = replica.post("/v2/models/m/infer", {"inputs": [good]})
    assert answer.status == 200, answer.body
    label = next(o for o in answer.json()["outputs"] if o["name"] == "label")
    assert label["data"] == iris["expected"]
    # /score takes v2 bodies for the repository's only model.
    assert replica.post("/score", {"inputs": [good]}).json()["model_name"] == "m"

    wrong_name = replica.post("/v2/models/m/infer", {"inputs": [{**good, "name": "x"}]})
    assert wrong_name.status == 400 and "'x'" in wrong_name.json()["error"]
    wrong_type = replica.post("/v2/models/m/infer", {"inputs": [{**good, "datatype": "FP64"}]})
    assert wrong_type.status == 400 and "float_input" in wrong_type.json()["error"]
    wrong_shape = replica.post("/v2/models/m/infer", {"inputs": [{**good, "shape": [4, 2]}]})
    assert wrong_shape.status == 400 and "float_input" in wrong_shape.json()["error"]
    too_big = {**good, "shape": [9, 4], "data": flat * 4 + flat[:4]}
    over = replica.post("/v2/models/m/infer", {"inputs": [too_big]})
    assert over.status == 400 and "max_batch_size" in over.json()["error"]
    assert replica.get("/v2/models/m").json()["inputs"][0]["shape"] == [-1, 4]


def test_plans_refuse_what_a_replica_cannot_serve(tmp_path: Path) -> None:
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "model.pkl").write_bytes(b"pickle")
    with pytest.raises(SpecError, match=r"served only when it holds model\.onnx"):
        deployment_kind("custom_model", custom, has_code=False)
    assert deployment_kind("custom_model", custom, has_code=True) == "code"
    assert deployment_kind("mlflow_model", custom, has_code=True) == "code"
    with pytest.raises(SpecError, match=r"holds no model\.onnx"):
        replica_model_fields("onnx", custom)

    repo = tmp_path / "repo"
    (repo / "t" / "1").mkdir(parents=True)
    (repo / "t" / "1" / "model.pt").write_bytes(b"torch")
    (repo / "t" / "config.pbtxt").write_text('name: "t"\nplatform: "pytorch_libtorch"\n')
    with pytest.raises(NotSupportedError, match="pytorch_libtorch backend"):
        replica_model_fields("triton", repo)


def test_mlflow_fast_path_answers_as_pyfunc_does(
    iris: dict[str, Any], tmp_path: Path, replicas: list[ReplicaClient]
) -> None:
    """Rows of the signature's numeric columns go to the estimator as an array; records
    and anything unusual go through pyfunc: both must answer the same."""
    import random

    path = iris["root"] / "mlflow-model"
    replica = _serve(tmp_path, replicas, {"kind": "mlflow", **replica_model_fields("mlflow", path)})
    generator = random.Random(7)
    rows = [[round(generator.uniform(0.1, 8), 2) for _ in COLUMNS] for _ in range(60)]
    rows[0] = [5, 3, 1, 0]  # integers in double columns are cast, not refused
    fast = replica.post("/score", {"input_data": {"columns": COLUMNS, "data": rows}})
    records = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    slow = replica.post("/score", {"input_data": records})
    assert fast.status == slow.status == 200
    assert fast.json() == slow.json()
    # Text where a number belongs takes pyfunc's path, which reads it as MLflow does.
    text = replica.post("/score", {"input_data": [["5.1", 3.5, 1.4, 0.2]]})
    numbers = replica.post("/score", {"input_data": [[5.1, 3.5, 1.4, 0.2]]})
    assert text.status == numbers.status == 200 and text.json() == numbers.json()
