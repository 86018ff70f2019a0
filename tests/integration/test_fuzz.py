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
