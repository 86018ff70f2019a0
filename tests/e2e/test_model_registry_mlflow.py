"""MLflow's model registry on a real server: the mlflow client and the `mill model` CLI see
one registry; a model registered from a job's run keeps the job's lineage."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from tests.e2e.harness import MillHome, kill_leftovers

TRAIN = textwrap.dedent(
    """\
    import mlflow
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    X = pd.DataFrame({"a": [0.0, 1.0, 0.9, 0.1], "b": [1.0, 0.0, 0.1, 0.8]})
    model = LogisticRegression().fit(X, [0, 1, 1, 0])
    mlflow.sklearn.log_model(model, name="model", input_example=X.head(1))
    print("trained")
    """
)


@pytest.fixture
def mill(db_url: str, tmp_path: Path) -> Iterator[MillHome]:
    """A home with its server, on SQLite and on PostgreSQL."""
    home = MillHome(tmp_path / "home", database_url=db_url)
    home.start()
    yield home
    home.stop()
    kill_leftovers(home.home)


@pytest.fixture
def mlflow_uri(mill: MillHome, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    import mlflow

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri: str = mill.json("workspace", "show")["mlflow_tracking_uri"]
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


def test_mlflow_and_mill_share_the_registry(
    mill: MillHome, mlflow_uri: str, tmp_path: Path
) -> None:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.exceptions import RestException

    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text(TRAIN)
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    mill.cli("data", "create", "--name", "train-data", "--type", "uri_file", "--path", str(data))
    job = mill.submit(
        "command: python train.py\ncode: src\n"
        "inputs:\n  training:\n    type: uri_file\n    path: azureml:train-data@latest\n",
        folder=".",
    )
    assert mill.wait_job(job, timeout=180)["status"] == "Completed"

    # Registered through MLflow: `mill model show` has the run and the job's lineage.
    first = mlflow.register_model(f"runs:/{job}/model", "iris")
    assert (first.version, first.run_id) == ("1", job)
    shown = mill.json("model", "show", "--name", "iris", "--version", "1")
    assert shown["type"] == "mlflow_model" and shown["run_id"] == job
    assert shown["lineage"]["job"] == job
    assert shown["lineage"]["inputs"]["training"]["asset"] == "azureml:train-data:1"
    base = mlflow_uri.split("/workspaces/")[0]
    rest = requests.get(f"{base}/api/v1/workspaces/default/models/iris", timeout=30)
    assert rest.status_code == 200 and rest.json()["run_id"] == job

    # Registered by the CLI: MLflow's search and loaders see it.
    mill.cli(
        "model",
        "create",
        "--name",
        "iris",
        "--type",
        "mlflow_model",
        "--path",
        f"runs:/{job}/model",
    )
    client = MlflowClient()
    versions = client.search_model_versions("name = 'iris'", order_by=["version_number"])
    assert [(v.version, v.run_id) for v in versions] == [("1", job), ("2", job)]
    client.set_registered_model_alias("iris", "champion", "2")
    x = pd.DataFrame({"a": [1.0, 0.0], "b": [0.0, 1.0]})
    by_alias = mlflow.pyfunc.load_model("models:/iris@champion").predict(x)
    by_number = mlflow.pyfunc.load_model("models:/iris/1").predict(x)
    assert list(by_alias) == list(by_number) == [1, 0]

    # Changes made through MLflow show in the CLI, and deletes are seen by both.
    client.update_model_version("iris", "1", description="from the job")
    client.transition_model_version_stage("iris", "1", "Staging")
    shown = mill.json("model", "show", "--name", "iris", "--version", "1")
    assert (shown["description"], shown["stage"]) == ("from the job", "Staging")
    client.delete_model_version("iris", "1")
    assert [m["version"] for m in mill.json("model", "list", "--name", "iris")] == ["2"]
    client.delete_registered_model("iris")
    with pytest.raises(RestException) as exc:
        client.get_registered_model("iris")
    assert exc.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "iris" not in [m["name"] for m in mill.json("model", "list")]
