"""The vault through the REST API in-process, on SQLite and PostgreSQL.

Every response body is checked for the secret's value: none may carry it.
"""

from __future__ import annotations

import hashlib
import json
import secrets as token_source
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from mill.server.app import create_app
from mill.services import secrets
from mill.services.context import Context
from mill.services.scheduler import Scheduler

VALUE = "pa55-" + token_source.token_hex(8)
BASE = "/api/v1/workspaces/default/secrets"


class Recorder:
    """A TestClient wrapper that keeps every response, to check none carries a value."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.bodies: list[str] = []

    def __call__(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        self.bodies.append(response.text)
        return response


@pytest.fixture
def api(ctx: Context) -> Iterator[Recorder]:
    with TestClient(create_app(ctx, run_loops=False), raise_server_exceptions=False) as client:
        recorder = Recorder(client)
        yield recorder
    for body in recorder.bodies:
        assert VALUE not in body


def test_set_show_list_delete_and_versions(api: Recorder, ctx: Context) -> None:
    created = api("PUT", f"{BASE}/db-password", json={"value": VALUE, "description": "the db"})
    assert created.status_code == 200, created.text
    info = created.json()
    assert (info["name"], info["version"], info["description"]) == ("db-password", 1, "the db")
    assert info["key_id"] == ctx.vault.key_id
    assert info["creation_context"]["created_at"].endswith("Z")
    assert "value" not in info

    again = api("PUT", f"{BASE}/db-password", json={"value": VALUE + "-2"}).json()
    assert again["version"] == 2 and again["description"] == "the db"
    assert api("GET", f"{BASE}/db-password").json() == again
    api("PUT", f"{BASE}/api.token_1", json={"value": VALUE})
    listed = api("GET", BASE).json()
    assert [s["name"] for s in listed] == ["api.token_1", "db-password"]
    assert secrets.reveal(ctx, "default", "db-password") == VALUE + "-2"

    assert api("DELETE", f"{BASE}/db-password").status_code == 204
    missing = api("GET", f"{BASE}/db-password")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert api("DELETE", f"{BASE}/db-password").status_code == 404


def test_the_database_holds_ciphertext_only(api: Recorder, ctx: Context) -> None:
    api("PUT", f"{BASE}/db-password", json={"value": VALUE})
    engine = create_engine(ctx.settings.database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT ciphertext, key_id FROM secrets")).one()
    finally:
        engine.dispose()
    stored = bytes(row[0])
    assert VALUE.encode() not in stored and len(stored) > len(VALUE)
    assert row[1] == ctx.vault.key_id


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("-leading-dash", {"value": VALUE}),
        ("has space", {"value": VALUE}),
        ("x" * 128, {"value": VALUE}),
        ("ok", {"value": ""}),
        ("ok", {"value": 42}),
        ("ok", {}),
        ("ok", {"value": "v" * (64 * 1024 + 1)}),
        ("ok", {"value": VALUE, "description": ["no"]}),
        ("ok", {"value": VALUE, "managed_by": "me"}),
        ("ok", {"value": VALUE + "\ud800"}),
        ("ok", {"value": VALUE, "description": "\udfff"}),
    ],
)
def test_bad_input_is_a_400_envelope_that_never_echoes_the_value(
    api: Recorder, name: str, body: dict[str, Any]
) -> None:
    # json.dumps escapes lone surrogates (\ud800), which JSON allows and UTF-8 cannot hold.
    response = api("PUT", f"{BASE}/{name}", content=json.dumps(body).encode())
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_spec"
    assert "v" * 100 not in response.text


def test_bad_json_and_unknown_workspace(api: Recorder) -> None:
    bad = api("PUT", f"{BASE}/ok", content=b'{"value": "' + VALUE.encode() + b'"')
    assert bad.status_code == 400 and bad.json()["code"] == "usage"
    nowhere = api("PUT", "/api/v1/workspaces/nope/secrets/ok", json={"value": VALUE})
    assert nowhere.status_code == 404
    assert api("GET", f"{BASE}/bad%20name").status_code == 400


def test_a_managed_secret_needs_force_to_delete(api: Recorder, ctx: Context) -> None:
    secrets.set_secret(ctx, "default", "store-key", VALUE, managed_by="datastore:lake")
    refused = api("DELETE", f"{BASE}/store-key")
    assert refused.status_code == 409
    assert "datastore:lake" in refused.json()["message"]
    assert api("DELETE", f"{BASE}/store-key?force=true").status_code == 204


def test_references_resolve_whole_and_embedded(api: Recorder, ctx: Context) -> None:
    api("PUT", f"{BASE}/user", json={"value": "alice"})
    api("PUT", f"{BASE}/db-password", json={"value": VALUE})
    env = {
        "DB_PASSWORD": "${{secrets.db-password}}",
        "DSN": "postgres://${{ secrets.user }}:${{secrets.db-password}}@db/x",
        "PLAIN": "no ${{inputs.x}} secret here",
    }
    assert secrets.find_references(env) == ["db-password", "user"]
    resolved = secrets.resolve_references(ctx, "default", env)
    assert resolved == {
        "DB_PASSWORD": VALUE,
        "DSN": f"postgres://alice:{VALUE}@db/x",
        "PLAIN": "no ${{inputs.x}} secret here",
    }
    assert secrets.secret_environment(ctx, "default", env).keys() == {"DB_PASSWORD", "DSN"}
    with pytest.raises(secrets.SpecError) as caught:
        secrets.resolve_references(ctx, "default", {"TOKEN": "${{secrets.nope}}"})
    assert "environment_variables.TOKEN" in caught.value.message
    assert "'nope'" in caught.value.message


def _run_until_done(ctx: Context, api: Recorder, name: str) -> dict[str, Any]:
    scheduler = Scheduler(ctx)
    deadline = time.monotonic() + 30
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        scheduler.tick()
        job = api("GET", f"/api/v1/workspaces/default/jobs/{name}").json()
        if job["status"] in ("Completed", "Failed", "Canceled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not finish: {job.get('status')}")


def test_a_job_gets_the_value_but_its_spec_plan_and_logs_do_not(
    api: Recorder, ctx: Context
) -> None:
    api("PUT", f"{BASE}/db-password", json={"value": VALUE})
    digest = hashlib.sha256(f"{VALUE}|u:{VALUE}".encode()).hexdigest()
    body = {  # the command compares a hash, so the value is nowhere but in the vault
        "command": f'test "$(printf %s "$DB_PASSWORD|$DSN" | sha256sum)" = "{digest}  -" '
        "&& echo ok",
        "environment_variables": {
            "DB_PASSWORD": "${{secrets.db-password}}",
            "DSN": "u:${{secrets.db-password}}",
        },
    }
    created = api("POST", "/api/v1/workspaces/default/jobs", json=body)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert created.json()["environment_variables"]["DB_PASSWORD"] == "${{secrets.db-password}}"
    job = _run_until_done(ctx, api, name)
    assert job["status"] == "Completed", job
    assert api("GET", f"/api/v1/workspaces/default/jobs/{name}/logs").text == "ok\n"
    plan = json.loads((ctx.run_dir("default", name) / "launch.json").read_text())
    assert "secret_env" not in plan and VALUE not in json.dumps(plan)
    assert plan["env"].get("DB_PASSWORD") is None


def test_submit_names_the_variable_and_the_unknown_secret(api: Recorder) -> None:
    body = {"command": "true", "environment_variables": {"TOKEN": "${{secrets.missing-one}}"}}
    response = api("POST", "/api/v1/workspaces/default/jobs", json=body)
    assert response.status_code == 400, response.text
    issue = response.json()["details"]["issues"][0]
    assert issue["field"] == "environment_variables.TOKEN"
    assert "missing-one" in issue["message"]
    bad = {"command": "true", "environment_variables": {"T": "${{secrets.bad name}}"}}
    assert api("POST", "/api/v1/workspaces/default/jobs", json=bad).status_code == 400


def test_a_secret_deleted_after_submit_fails_the_job_with_a_reason(
    api: Recorder, ctx: Context
) -> None:
    api("PUT", f"{BASE}/short-lived", json={"value": VALUE})
    body = {"command": "true", "environment_variables": {"X": "${{secrets.short-lived}}"}}
    name = api("POST", "/api/v1/workspaces/default/jobs", json=body).json()["name"]
    api("DELETE", f"{BASE}/short-lived")
    job = _run_until_done(ctx, api, name)
    assert job["status"] == "Failed"
    assert "short-lived" in json.dumps(job) and "environment_variables.X" in json.dumps(job)
