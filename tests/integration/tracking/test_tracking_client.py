"""The real mlflow client against Mill's tracking API, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any
from typing import Any as Server

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException


@pytest.fixture
def client(server: Server) -> MlflowClient:
    mlflow.set_tracking_uri(server.url)
    return MlflowClient(server.url)


def test_fluent_run_logs_everything(client: MlflowClient) -> None:
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "opt": "adam"})
        mlflow.log_metric("loss", 1.0, step=0)
        mlflow.log_metric("loss", 0.5, step=1)
        mlflow.log_metrics({"acc": 0.9, "nan": math.nan})
        mlflow.set_tag("team", "a")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_metric("x", 2)
    run = client.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "parent"
    assert run.data.params == {"lr": "0.1", "depth": "3", "opt": "adam"}
    assert run.data.metrics["loss"] == 0.5
    assert run.data.metrics["acc"] == 0.9
    assert math.isnan(run.data.metrics["nan"])
    assert run.data.tags["team"] == "a"
    kid = client.get_run(child.info.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == parent.info.run_id
    history = client.get_metric_history(parent.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]


def test_log_batch_and_search(client: MlflowClient) -> None:
    exp = client.create_experiment("search")
    ids = []
    for i in range(5):
        run = client.create_run(exp, run_name=f"run-{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("acc", i / 10, 0, s) for s in range(3)],
            params=[Param("p", "even" if i % 2 == 0 else "odd")],
            tags=[RunTag("t", f"v{i}")],
        )
        client.set_terminated(run.info.run_id, "FINISHED" if i < 4 else "FAILED")
        ids.append(run.info.run_id)
    found = client.search_runs([exp], "metrics.acc > 0.15 AND params.p = 'even'")
    assert {r.info.run_id for r in found} == {ids[2], ids[4]}
    ordered = client.search_runs([exp], order_by=["metrics.acc DESC"])
    assert [r.info.run_id for r in ordered] == ids[::-1]
    assert len(client.search_runs([exp], "attributes.status = 'FAILED'")) == 1
    assert len(client.search_runs([exp], "attributes.run_name LIKE 'run-%'")) == 5
    assert len(client.search_runs([exp], "attributes.run_name ILIKE 'RUN-1'")) == 1
    assert len(client.search_runs([exp], "tags.t IN ('v1', 'v3')")) == 2
    assert len(client.search_runs([exp], "tags.t != 'v1'")) == 4
    page = client.search_runs([exp], max_results=2, order_by=["params.p", "attributes.start_time"])
    assert len(page) == 2 and page.token
    rest = client.search_runs([exp], max_results=10, page_token=page.token)
    assert len(rest) == 3 and not rest.token
    frame = mlflow.search_runs([exp], filter_string="params.p = 'odd'")
    assert sorted(frame["run_id"]) == sorted([ids[1], ids[3]])
    assert "metrics.acc" in frame.columns
    # Two conditions on one key; a NaN, or no value at all, never matches a comparison.
    both = client.search_runs([exp], "metrics.acc >= 0.1 AND metrics.acc < 0.3")
    assert {r.info.run_id for r in both} == {ids[1], ids[2]}
    lonely = client.create_run(exp).info.run_id
    client.log_metric(lonely, "acc", math.nan)
    for text in ("metrics.acc != 0.5", "params.p != 'x'", "tags.t != 'v1'"):
        assert lonely not in {r.info.run_id for r in client.search_runs([exp], text)}, text
    assert len(client.search_runs([exp], "metrics.acc != 0.5")) == 5


def test_experiments_crud(client: MlflowClient) -> None:
    exp = client.create_experiment("crud", tags={"k": "v"})
    assert client.get_experiment(exp).tags == {"k": "v"}
    assert client.get_experiment_by_name("crud").experiment_id == exp
    assert client.get_experiment_by_name("nope") is None
    client.rename_experiment(exp, "crud2")
    client.set_experiment_tag(exp, "k2", "v2")
    assert client.get_experiment(exp).tags == {"k": "v", "k2": "v2"}
    client.delete_experiment(exp)
    assert client.get_experiment(exp).lifecycle_stage == "deleted"
    names = [e.name for e in client.search_experiments()]
    assert "crud2" not in names and "Default" in names
    client.restore_experiment(exp)
    assert "crud2" in [e.name for e in client.search_experiments(filter_string="name LIKE 'crud%'")]
    assert client.get_experiment("0").name == "Default"


def test_metric_history_pages_as_mlflow_does(client: MlflowClient, server: Server) -> None:
    """The client asks for 25,000 points a page and follows next_page_token; the raw API
    honours max_results and page_token, and refuses bad ones with MLflow's error code."""
    run = client.create_run("0").info.run_id
    for b in range(26):  # 26,000 points: two pages for the client
        client.log_batch(
            run, metrics=[Metric("h", b * 1000 + i, 7, b * 1000 + i) for i in range(1000)]
        )
    history = client.get_metric_history(run, "h")
    assert [m.step for m in history] == list(range(26_000))
    assert history[-1].value == 25_999.0 and history[-1].key == "h"

    url = f"{server.url}/api/2.0/mlflow/metrics/get-history"
    steps, token, pages = [], None, 0
    while True:
        params = {"run_id": run, "metric_key": "h", "max_results": 10_000}
        if token:
            params["page_token"] = token
        answer = requests.get(url, params=params, timeout=60).json()
        steps += [int(m["step"]) for m in answer["metrics"]]
        pages += 1
        token = answer.get("next_page_token")
        if not token:
            break
    assert pages == 3 and steps == list(range(26_000))
    for bad in ({"max_results": 0}, {"max_results": "ten"}, {"page_token": "not-a-token"}):
        answer = requests.get(url, params={"run_id": run, "metric_key": "h", **bad}, timeout=30)
        assert answer.status_code == 400, (bad, answer.text)
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_errors_have_mlflow_codes(client: MlflowClient, server: Server) -> None:
    client.create_experiment("dup")
    with pytest.raises(MlflowException) as info:
        client.create_experiment("dup")
    assert info.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as info:
        client.get_run("0123456789abcdef")
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as info:
        client.search_runs(["0"], "metrics.acc >> 1")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "invalid filter" in info.value.message
    run = client.create_run("0")
    client.log_param(run.info.run_id, "p", "1")
    client.log_param(run.info.run_id, "p", "1")  # the same value again is fine
    with pytest.raises(MlflowException) as info:
        client.log_param(run.info.run_id, "p", "2")
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    # Steps and timestamps past 64 bits (the client's protobuf would refuse them), in a
    # log-metric, a small batch and a COPY-sized one: 400, and nothing stored.
    huge = str(2**63)
    for path, body in (
        ("log-metric", {"key": "big", "value": 1, "timestamp": 0, "step": huge}),
        ("log-batch", {"metrics": [{"key": "big", "value": 1, "timestamp": huge, "step": 0}]}),
        (
            "log-batch",
            {
                "metrics": [
                    {"key": "big", "value": 1, "timestamp": 0, "step": i} for i in range(99)
                ]
                + [{"key": "big", "value": 1, "timestamp": 0, "step": "-" + huge + "1"}]
            },
        ),
    ):
        answer = requests.post(
            f"{server.url}/api/2.0/mlflow/runs/{path}",
            json={"run_id": run.info.run_id, **body},
            timeout=30,
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "outside the 64-bit integer range" in answer.json()["message"]
    assert client.get_metric_history(run.info.run_id, "big") == []
    # The client splits big batches itself, so send one that is too big by hand.
    metrics = [{"key": "m", "value": 1, "timestamp": 0, "step": i} for i in range(1001)]
    answer = requests.post(
        f"{server.url}/api/2.0/mlflow/runs/log-batch",
        json={"run_id": run.info.run_id, "metrics": metrics},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "at most 1000 metrics" in answer.json()["message"]
    for bad in ("not json", "[1]"):
        answer = requests.post(f"{server.url}/api/2.0/mlflow/runs/log-batch", data=bad, timeout=30)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    # Paths Mill does not serve answer in MLflow's shape; tracing says it is not supported.
    for method, path in (("GET", "/api/2.0/mlflow/no-such-thing"), ("POST", "/api/3.0/mlflow/x")):
        answer = requests.request(method, f"{server.url}{path}", json={}, timeout=30)
        assert answer.status_code == 404, answer.text
        assert (
            answer.json()["error_code"] == "ENDPOINT_NOT_FOUND" and path in answer.json()["message"]
        )
    for path in ("/api/3.0/mlflow/traces", "/workspaces/default/api/2.0/mlflow/traces/t-1"):
        answer = requests.post(f"{server.url}{path}", json={}, timeout=30)
        assert answer.status_code == 501, answer.text
        assert answer.json()["error_code"] == "NOT_IMPLEMENTED"
        assert "tracing" in answer.json()["message"]
    # A registry endpoint Mill lacks (Databricks' permissions) says so rather than 404.
    answer = requests.get(f"{server.url}/api/2.0/mlflow/registered-models/permissions", timeout=30)
    assert answer.status_code == 501
    assert answer.json()["error_code"] == "NOT_IMPLEMENTED"


def test_workspace_prefix(server: Server) -> None:
    from mill.services import workspaces

    workspaces.create(server.ctx, "team", None, {})
    team = MlflowClient(f"{server.url}/workspaces/team")
    exp = team.create_experiment("only-in-team")
    run = team.create_run(exp)
    team.log_metric(run.info.run_id, "m", 1.0)
    default = MlflowClient(server.url)
    assert default.get_experiment_by_name("only-in-team") is None
    with pytest.raises(MlflowException) as info:
        default.get_run(run.info.run_id)
    assert info.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert team.get_run(run.info.run_id).data.metrics == {"m": 1.0}


def test_fixed_path_calls_answer_alike_under_every_prefix(server: Server) -> None:
    """Fixed-path calls are found ahead of the routers (FixedPathRoute): under each prefix
    they land in the prefix's workspace, and what they do not serve answers as before."""
    from mill.services import workspaces

    workspaces.create(server.ctx, "team", None, {})

    def call(method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{server.url}{path}", timeout=30, **kwargs)

    made = call(
        "POST", "/workspaces/team/ajax-api/2.0/mlflow/experiments/create", json={"name": "e"}
    )
    assert made.status_code == 200, made.text
    by_name = {"experiment_name": "e"}
    found = call("GET", "/workspaces/team/api/2.0/mlflow/experiments/get-by-name", params=by_name)
    assert found.json()["experiment"]["experiment_id"] == made.json()["experiment_id"]
    for path in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):  # the default workspace's
        missing = call("GET", f"{path}/experiments/get-by-name", params=by_name)
        assert (
            missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        )
    nowhere = call("POST", "/workspaces/nope/api/2.0/mlflow/experiments/create", json={"name": "e"})
    assert nowhere.status_code == 404, nowhere.text
    assert nowhere.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert "nope" in nowhere.json()["message"]
    # A fixed path with the wrong method, and a path with a parameter, go to the routers.
    wrong = call("GET", "/api/2.0/mlflow/runs/log-metric")
    assert wrong.status_code == 404 and wrong.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    model = call("GET", "/workspaces/team/api/2.0/mlflow/logged-models/m-404")
    assert model.status_code == 404 and model.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
