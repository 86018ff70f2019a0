"""The MLflow model registry API on Mill's registry, with the real mlflow client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException, RestException
from sklearn.linear_model import LogisticRegression

from mill.services import models as registry

X = np.array([[0.0], [1.0], [2.0], [3.0]])
Y = np.array([0, 0, 1, 1])


def _logged(server: Any) -> tuple[str, Any, LogisticRegression]:
    mlflow.set_tracking_uri(server.url)
    mlflow.set_experiment("registry")
    model = LogisticRegression().fit(X, Y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model")
    return run.info.run_id, info, model


def _code(exc: pytest.ExceptionInfo[MlflowException]) -> str:
    return str(exc.value.error_code)


def test_register_load_and_alias(server: Any) -> None:
    run_id, info, model = _logged(server)
    first = mlflow.register_model(f"runs:/{run_id}/model", "iris")
    second = mlflow.register_model(info.model_uri, "iris")
    assert (first.version, second.version) == ("1", "2")
    assert first.run_id == run_id and second.run_id == run_id
    assert second.source == info.model_uri
    raw = requests.get(
        f"{server.url}/api/2.0/mlflow/model-versions/get",
        params={"name": "iris", "version": "1"},
        timeout=30,
    ).json()["model_version"]
    assert raw["model_id"] == info.model_id and raw["source"] == info.model_uri
    assert first.status == "READY" and first.current_stage == "None"

    client = MlflowClient()
    client.set_registered_model_alias("iris", "champion", "1")
    by_alias = client.get_model_version_by_alias("iris", "champion")
    assert by_alias.version == "1" and by_alias.aliases == ["champion"]
    assert client.get_registered_model("iris").aliases == {"champion": "1"}
    expected = list(model.predict(X))
    for uri in ("models:/iris@champion", "models:/iris/1", "models:/iris/2"):
        assert list(mlflow.pyfunc.load_model(uri).predict(X)) == expected
    copied = client.copy_model_version("models:/iris/1", "iris-copy")
    assert (copied.version, copied.run_id) == ("1", run_id)
    assert list(mlflow.pyfunc.load_model("models:/iris-copy/1").predict(X)) == expected
    uri = client.get_model_version_download_uri("iris", "1")
    assert uri.startswith("mlflow-artifacts:/registry/iris/1/")

    # The same registry as `mill model show`, with the run recorded.
    shown = registry.show(server.ctx, "default", "iris", "2")
    assert shown["type"] == "mlflow_model" and shown["run_id"] == run_id
    assert "sklearn" in shown["flavors"]
    rest = requests.get(f"{server.url}/api/v1/workspaces/default/models/iris", timeout=30)
    assert rest.status_code == 200, rest.text

    client.delete_registered_model_alias("iris", "champion")
    with pytest.raises(MlflowException) as exc:
        client.get_model_version_by_alias("iris", "champion")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_models_made_by_mill_are_seen_by_mlflow(server: Any) -> None:
    run_id, _, _ = _logged(server)
    made = registry.create(
        server.ctx,
        "default",
        {"name": "made", "type": "mlflow_model", "path": f"runs:/{run_id}/model"},
    )
    found = MlflowClient().search_model_versions("name='made'")
    assert [(v.name, v.version, v.run_id) for v in found] == [("made", made.version, run_id)]
    assert found[0].source == f"runs:/{run_id}/model"
    loaded = mlflow.pyfunc.load_model("models:/made/1")
    assert list(loaded.predict(X)) == [0, 0, 1, 1]


def test_registered_model_crud_search_and_errors(server: Any) -> None:
    mlflow.set_tracking_uri(server.url)
    client = MlflowClient()
    for name in ("alpha", "beta", "gamma"):
        client.create_registered_model(name, tags={"team": name[0]}, description=f"{name} model")
    with pytest.raises(RestException) as exc:
        client.create_registered_model("alpha")
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(RestException) as exc:
        client.get_registered_model("nope")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(RestException) as exc:
        client.get_model_version("alpha", "7")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(RestException) as exc:
        client.create_model_version("nope", "mlflow-artifacts:/x", None)
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"

    client.update_registered_model("alpha", description="first")
    client.set_registered_model_tag("alpha", "stage", "dev")
    client.delete_registered_model_tag("alpha", "team")
    alpha = client.get_registered_model("alpha")
    assert alpha.description == "first" and alpha.tags == {"stage": "dev"}

    names = [m.name for m in client.search_registered_models()]
    assert names == ["alpha", "beta", "gamma"]
    assert [m.name for m in client.search_registered_models("name LIKE '%mm%'")] == ["gamma"]
    assert [m.name for m in client.search_registered_models("tags.team = 'b'")] == ["beta"]
    assert [m.name for m in client.search_registered_models("name = 'beta'")] == ["beta"]
    desc = client.search_registered_models(order_by=["name DESC"], max_results=2)
    assert [m.name for m in desc] == ["gamma", "beta"]
    assert desc.token
    rest = client.search_registered_models(order_by=["name DESC"], page_token=desc.token)
    assert [m.name for m in rest] == ["alpha"] and not rest.token
    with pytest.raises(MlflowException) as exc:
        client.search_registered_models("nonsense = 'x'")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"

    client.rename_registered_model("beta", "delta")
    with pytest.raises(RestException) as exc:
        client.rename_registered_model("delta", "gamma")
    assert _code(exc) == "RESOURCE_ALREADY_EXISTS"
    client.delete_registered_model("gamma")
    assert [m.name for m in client.search_registered_models()] == ["alpha", "delta"]
    with pytest.raises(RestException) as exc:
        client.delete_registered_model("gamma")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_versions_tags_stages_search_and_delete(server: Any) -> None:
    run_id, info, _ = _logged(server)
    client = MlflowClient()
    client.create_registered_model("m")
    v1 = client.create_model_version("m", info.model_uri, run_id, tags={"k": "1"})
    location = client.get_logged_model(info.model_id).artifact_location
    v2 = client.create_model_version("m", location, description="raw files")
    assert (v1.version, v2.version) == ("1", "2")
    assert v2.description == "raw files" and v2.source == location

    client.update_model_version("m", "1", description="the first")
    client.set_model_version_tag("m", "1", "quality", "good")
    client.delete_model_version_tag("m", "1", "k")
    got = client.get_model_version("m", "1")
    assert got.description == "the first" and got.tags == {"quality": "good"}

    staged = client.transition_model_version_stage("m", "1", "production")
    assert staged.current_stage == "Production"
    client.transition_model_version_stage("m", "2", "Production", archive_existing_versions=True)
    assert client.get_model_version("m", "1").current_stage == "Archived"
    latest = client.get_latest_versions("m", stages=["Production"])
    assert [v.version for v in latest] == ["2"]
    assert registry.show(server.ctx, "default", "m", "2")["stage"] == "Production"
    with pytest.raises(MlflowException) as exc:
        client.transition_model_version_stage("m", "1", "Nowhere")
    assert _code(exc) == "INVALID_PARAMETER_VALUE"

    assert [v.version for v in client.search_model_versions(f"run_id = '{run_id}'")] == ["1"]
    by_tag = client.search_model_versions("name = 'm' AND tags.quality = 'good'")
    assert [v.version for v in by_tag] == ["1"]
    source = client.search_model_versions(f"source_path = '{location}'")
    assert [v.version for v in source] == ["2"]
    ordered = client.search_model_versions("name='m'", order_by=["version_number ASC"])
    assert [v.version for v in ordered] == ["1", "2"]
    page = client.search_model_versions("name='m'", max_results=1)
    assert len(page) == 1 and page.token

    direct = client.create_model_version("m", f"runs:/{run_id}/model", run_id)
    assert direct.source == f"runs:/{run_id}/model"
    assert registry.show(server.ctx, "default", "m", direct.version)["type"] == "mlflow_model"
    with mlflow.start_run(run_id=run_id) as run:
        mlflow.log_text("plain", "notes/readme.txt")
    files = client.create_model_version("m", f"{run.info.artifact_uri}/notes", run_id)
    assert registry.show(server.ctx, "default", "m", files.version)["type"] == "custom_model"
    local = mlflow.artifacts.download_artifacts(f"models:/m/{files.version}")
    assert (Path(local) / "readme.txt").read_text() == "plain"
    with pytest.raises(MlflowException) as exc:
        client.create_model_version("m", f"runs:/{run_id}/missing", run_id)
    assert _code(exc) == "INVALID_PARAMETER_VALUE"

    client.delete_model_version("m", "1")
    assert [v.version for v in client.search_model_versions("name='m'")] == ["4", "3", "2"]
    with pytest.raises(RestException) as exc:
        client.delete_model_version("m", "1")
    assert _code(exc) == "RESOURCE_DOES_NOT_EXIST"


def test_workspace_prefix_and_ajax(server: Any) -> None:
    from mill.services import workspaces

    workspaces.create(server.ctx, "team", None, {})
    mlflow.set_tracking_uri(f"{server.url}/workspaces/team")
    MlflowClient().create_registered_model("only-here")
    names = [m.name for m in MlflowClient(server.url).search_registered_models()]
    assert "only-here" not in names
    answer = requests.get(
        f"{server.url}/workspaces/team/ajax-api/2.0/mlflow/registered-models/search", timeout=30
    )
    assert [m["name"] for m in answer.json()["registered_models"]] == ["only-here"]
    missing = requests.get(
        f"{server.url}/ajax-api/2.0/mlflow/registered-models/get", params={"name": "x"}, timeout=30
    )
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_renamed_model_keeps_its_files(server: Any, tmp_path: Path) -> None:
    run_id, info, _ = _logged(server)
    client = MlflowClient()
    client.create_registered_model("old")
    client.create_model_version("old", info.model_uri, run_id)
    client.rename_registered_model("old", "new")
    with mlflow.start_run(run_id=run_id) as run:
        mlflow.log_text("plain", "notes/readme.txt")
    client.create_registered_model("old")
    client.create_model_version("old", f"{run.info.artifact_uri}/notes", run_id)
    assert list(mlflow.pyfunc.load_model("models:/new/1").predict(X)) == [0, 0, 1, 1]


MISSING = [
    ("GET", "registered-models/get", {"name": "x"}),
    ("POST", "registered-models/rename", {"name": "x", "new_name": "y"}),
    ("PATCH", "registered-models/update", {"name": "x", "description": "d"}),
    ("DELETE", "registered-models/delete", {"name": "x"}),
    ("POST", "registered-models/get-latest-versions", {"name": "x"}),
    ("POST", "registered-models/set-tag", {"name": "x", "key": "k", "value": "v"}),
    ("DELETE", "registered-models/delete-tag", {"name": "x", "key": "k"}),
    ("POST", "registered-models/alias", {"name": "x", "alias": "a", "version": "1"}),
    ("DELETE", "registered-models/alias", {"name": "x", "alias": "a"}),
    ("GET", "registered-models/alias", {"name": "x", "alias": "a"}),
    ("POST", "model-versions/create", {"name": "x", "source": "mlflow-artifacts:/a"}),
    ("GET", "model-versions/get", {"name": "x", "version": "1"}),
    ("PATCH", "model-versions/update", {"name": "x", "version": "1", "description": "d"}),
    ("POST", "model-versions/transition-stage", {"name": "x", "version": "1", "stage": "Staging"}),
    ("DELETE", "model-versions/delete", {"name": "x", "version": "1"}),
    ("GET", "model-versions/get-download-uri", {"name": "x", "version": "1"}),
    ("POST", "model-versions/set-tag", {"name": "x", "version": "1", "key": "k", "value": "v"}),
    ("DELETE", "model-versions/delete-tag", {"name": "x", "version": "1", "key": "k"}),
]


def _call(server: Any, method: str, path: str, body: dict[str, str]) -> requests.Response:
    url = f"{server.url}/api/2.0/mlflow/{path}"
    if method == "GET":
        return requests.get(url, params=body, timeout=30)
    return requests.request(method, url, json=body, timeout=30)


def test_every_route_answers_404_for_a_missing_model_or_version(server: Any) -> None:
    for method, path, body in MISSING:
        answer = _call(server, method, path, body)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", path
    MlflowClient(server.url).create_registered_model("x")
    for method, path, body in MISSING:
        if "version" in body and path != "model-versions/create":
            answer = _call(server, method, path, body)
            assert answer.status_code == 404, (path, answer.text)
            assert answer.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST", path
    bad = _call(server, "POST", "registered-models/create", {})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
