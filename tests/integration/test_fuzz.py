"""Arbitrary JSON never crashes the spec parser or makes the API answer 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mill import specs
from mill.compute.local import LocalRunner
from mill.config import Settings
from mill.errors import MillError
from mill.server.app import create_app
from mill.services.context import Context
from mill.store import SqlStore

FIELDS = [
    "command", "code", "inputs", "outputs", "environment", "environment_variables", "compute",
    "resources", "distribution", "limits", "name", "display_name", "experiment_name", "tags",
    "type", "services", "properties", "description", "$schema", "mode", "path", "value",
    "instance_count", "timeout", "process_count_per_instance", "optional", "default",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["uri_file", "uri_folder", "azureml:x:1", "${{inputs.a}}", "pytorch", "."]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
job_bodies = st.fixed_dictionaries(
    {"command": st.one_of(st.text(max_size=40), scalars)},
    optional={k: json_values for k in FIELDS[1:12]},
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(job_bodies, st.dictionaries(st.text(max_size=10), json_values, max_size=6)))
def test_parser_raises_only_mill_errors(body: dict[str, Any]) -> None:
    try:
        specs.parse_command_job(body)
    except MillError:
        pass


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    home = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{home / 'mill.db'}"
    ctx = Context(Settings(home=Path(home), database_url=url), SqlStore(url), LocalRunner())
    with TestClient(create_app(ctx, run_loops=False), raise_server_exceptions=False) as client:
        yield client
    ctx.store.dispose()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(job_bodies, json_values))
def test_job_api_never_answers_500(api: TestClient, body: Any) -> None:
    # json.dumps writes NaN and Infinity as Python's json does: bodies a careless client sends.
    response = api.post(
        "/api/v1/workspaces/default/jobs",
        params={"validate_only": "true"},
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"code", "message", "hint", "details"}


ONLINE_FIELDS = [
    "name", "endpoint_name", "auth_mode", "traffic", "mirror_traffic", "model", "path", "type",
    "code_configuration", "code", "scoring_script", "environment", "conda_file", "instance_count",
    "request_settings", "request_timeout_ms", "max_concurrent_requests_per_instance",
    "liveness_probe", "readiness_probe", "period", "failure_threshold", "scale_settings",
    "min_instances", "max_instances", "data_collector", "collections", "enabled", "tags",
]  # fmt: skip
online_values = st.recursive(
    st.one_of(
        scalars, st.sampled_from(["blue", "key", "aml_token", "azureml:m:1", "mlflow_model"])
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(ONLINE_FIELDS), st.text(max_size=8)), inner, max_size=5
        ),
    ),
    max_leaves=25,
)
online_bodies = st.dictionaries(st.sampled_from(ONLINE_FIELDS), online_values, max_size=8)


@settings(max_examples=300, deadline=None)
@given(body=st.one_of(online_bodies, st.dictionaries(st.text(max_size=10), online_values)))
def test_online_parsers_raise_only_mill_errors(body: dict[str, Any]) -> None:
    for parse in (specs.parse_online_endpoint, specs.parse_online_deployment):
        try:
            parse(body)
        except MillError:
            pass


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.one_of(online_bodies, online_values))
def test_online_endpoint_api_never_answers_500(api: TestClient, body: Any) -> None:
    if api.get("/api/v1/workspaces/default/online-endpoints/fuzzed").status_code == 404:
        created = api.post("/api/v1/workspaces/default/online-endpoints", json={"name": "fuzzed"})
        assert created.status_code == 201, created.text
    for method, path in (
        ("POST", "/api/v1/workspaces/default/online-endpoints/fuzzed/deployments"),
        ("PATCH", "/api/v1/workspaces/default/online-endpoints/fuzzed"),
        ("POST", "/api/v1/workspaces/default/online-endpoints"),
    ):
        response = api.request(
            method,
            path,
            content=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:
            assert set(response.json()) == {"code", "message", "hint", "details"}
