"""The REST API in-process (FastAPI TestClient), on SQLite and PostgreSQL.

Job processes are real: the scheduler is driven by hand and launches the real bootstrap.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from mill.server.app import create_app
from mill.services.context import Context
from mill.services.scheduler import Scheduler


def _run_until_done(
    ctx: Context, api: TestClient, name: str, timeout: float = 30
) -> dict[str, Any]:
    scheduler = Scheduler(ctx)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        scheduler.tick()
        job: dict[str, Any] = api.get(f"/api/v1/workspaces/default/jobs/{name}").json()
        if job["status"] in ("Completed", "Failed", "Canceled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {name} did not finish: {job['status']}")


def test_health_and_openapi(api: TestClient) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/workspaces/{ws}/jobs" in paths


def test_the_server_app_freezes_its_startup_heap(ctx: Context) -> None:
    """The server process's app hides what startup made from the garbage collector, so no
    request waits on a full collection walking it; apps built for tests do not."""
    gc.unfreeze()
    try:
        with TestClient(create_app(ctx, run_loops=False)) as plain:
            assert plain.get("/healthz").status_code == 200
            assert gc.get_freeze_count() == 0
        with TestClient(create_app(ctx, run_loops=False, freeze_startup_heap=True)) as server:
            assert server.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000  # the modules, routes, tables, ...
    finally:
        gc.unfreeze()


def test_default_workspace_and_datastore_exist(api: TestClient, ctx: Context) -> None:
    ws = api.get("/api/v1/workspaces/default").json()
    assert ws["storage_root"] == str(ctx.settings.workspace_root("default"))
    stores = api.get("/api/v1/workspaces/default/datastores").json()
    assert [(d["name"], d["is_default"]) for d in stores] == [("workspaceblobstore", True)]


def test_a_job_runs_with_real_processes(api: TestClient, ctx: Context) -> None:
    body = {
        "command": "echo hi from ${{name}} && echo ${{inputs.n}} > ${{outputs.out}}/n.txt",
        "inputs": {"n": 7},
        "outputs": {"out": None},
        "experiment_name": "api",
    }
    created = api.post("/api/v1/workspaces/default/jobs", json=body)
    assert created.status_code == 201, created.text
    name = created.json()["name"]
    assert created.json()["status"] == "NotStarted"
    job = _run_until_done(ctx, api, name)
    assert job["status"] == "Completed", job
    assert [h["status"] for h in job["status_history"]][:2] == ["NotStarted", "Queued"]
    log = api.get(f"/api/v1/workspaces/default/jobs/{name}/logs").text
    assert log == f"hi from {name}\n"
    out = (
        ctx.settings.workspace_root("default")
        / "datastores/workspaceblobstore/azureml"
        / name
        / "out"
    )
    assert (out / "n.txt").read_text() == "7\n"


def test_an_idle_scheduler_pass_is_one_query(api: TestClient, ctx: Context) -> None:
    """With no unfinished job a pass only looks (twice a second, on every idle server); with
    one, it does its work."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    scheduler = Scheduler(ctx)
    event.listen(ctx.store.engine, "before_cursor_execute", count)
    try:
        scheduler.tick()
        assert len(statements) == 1, statements
        name = api.post("/api/v1/workspaces/default/jobs", json={"command": "true"}).json()["name"]
        statements.clear()
        scheduler.tick()
        assert len(statements) > 1
    finally:
        event.remove(ctx.store.engine, "before_cursor_execute", count)
    assert _run_until_done(ctx, api, name)["status"] == "Completed"


def test_a_failing_job_records_exit_code_and_reason(api: TestClient, ctx: Context) -> None:
    body = {"command": "echo about to fail; python -c 'raise SystemExit(\"bad thing\")'"}
    name = api.post("/api/v1/workspaces/default/jobs", json=body).json()["name"]
    job = _run_until_done(ctx, api, name)
    assert job["status"] == "Failed"
    assert job["exit_code"] == 1
    assert "bad thing" in job["error"]["message"]


def test_cancel_a_queued_job(api: TestClient) -> None:
    name = api.post("/api/v1/workspaces/default/jobs", json={"command": "sleep 30"}).json()["name"]
    job = api.post(f"/api/v1/workspaces/default/jobs/{name}/cancel").json()
    assert job["status"] == "Canceled"
    again = api.post(f"/api/v1/workspaces/default/jobs/{name}/cancel")
    assert again.status_code == 409 and again.json()["code"] == "conflict"


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    ("POST", "/api/v1/workspaces/default/jobs", "not json", 400, "not valid JSON"),
    ("POST", "/api/v1/workspaces/default/jobs", [1, 2], 400, "JSON object"),
    ("POST", "/api/v1/workspaces/default/jobs", '{"command": Infinity}', 400, "not a JSON number"),
    ("POST", "/api/v1/workspaces/default/jobs", {}, 400, "command"),
    ("POST", "/api/v1/workspaces/default/jobs", {"command": "x", "colour": 1}, 400, "colour"),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "compute": "gpu"},
        400,
        "compute 'gpu'",
    ),
    ("POST", "/api/v1/workspaces/default/jobs", {"command": "x", "code": "/etc"}, 400, "uploaded"),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "code": "snapshot:" + "0" * 64},
        400,
        "unknown code snapshot",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "inputs": {"d": {"type": "uri_folder", "path": "/tmp"}}},
        400,
        "uploaded",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {
            "command": "x",
            "inputs": {"d": {"type": "uri_file", "path": "azureml://datastores/nope/paths/a"}},
        },
        400,
        "nope",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "inputs": {"d": {"type": "uri_file", "path": "azureml:iris:1"}}},
        400,
        "data asset 'iris' version '1' not found",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {
            "command": "x",
            "outputs": {"o": {"path": "azureml://datastores/workspaceblobstore/paths/../../x"}},
        },
        400,
        "must not contain '..'",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "name": "bad name!"},
        400,
        "job name",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/jobs",
        {"command": "x", "resources": {"instance_count": 999}},
        400,
        "max_instances",
    ),
    ("POST", "/api/v1/workspaces/nope/jobs", {"command": "x"}, 404, "workspace 'nope' not found"),
    ("GET", "/api/v1/workspaces/default/jobs/nope", None, 404, "job 'nope' not found"),
    ("GET", "/api/v1/workspaces/default/jobs?max_results=0", None, 400, "max_results"),
    ("POST", "/api/v1/workspaces", {"name": "a"}, 400, "workspace name"),
    (
        "POST",
        "/api/v1/workspaces/default/computes",
        {"name": "c1", "max_instances": "two"},
        400,
        "integer",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/computes",
        {"name": "c1", "type": "quantum"},
        400,
        "compute type",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/computes",
        {"name": "c1", "max_instances": 0},
        400,
        "at least 1",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/computes",
        {"name": "c1", "type": "amlcompute"},
        501,
        "not available",
    ),
    ("DELETE", "/api/v1/workspaces/default", None, 409, "cannot be deleted"),
    ("PUT", "/api/v1/workspaces/default/blobs/not-a-digest", b"x", 400, "sha256"),
    ("PUT", "/api/v1/workspaces/default/blobs/" + "0" * 64, b"x", 400, "hash to"),
    (
        "POST",
        "/api/v1/workspaces/default/snapshots",
        {"files": [{"path": "../x", "sha256": "0" * 64}]},
        400,
        "inside the snapshot",
    ),
    (
        "POST",
        "/api/v1/workspaces/default/snapshots",
        {"files": [{"path": "x", "sha256": "1" * 64}]},
        400,
        "not uploaded",
    ),
    (
        "GET",
        "/api/v1/workspaces/default/jobs/nope/logs?file=../../etc/passwd",
        None,
        404,
        "not found",
    ),
    ("POST", "/api/v1/runtime/jobs/1/events", {"status": "Running"}, 404, "not found"),
    ("GET", "/api/v1/nothing/here", None, 404, "Not Found"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "text"), BAD_REQUESTS)
def test_bad_requests_get_a_clear_4xx_envelope(
    api: TestClient, method: str, path: str, body: Any, status: int, text: str
) -> None:
    kwargs: dict[str, Any] = {}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif isinstance(body, str):
        kwargs["content"] = body.encode()
        kwargs["headers"] = {"content-type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    response = api.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    envelope = response.json()
    assert set(envelope) == {"code", "message", "hint", "details"}
    assert text in envelope["message"], envelope


def test_log_path_cannot_escape_the_job_folder(api: TestClient) -> None:
    name = api.post("/api/v1/workspaces/default/jobs", json={"command": "true"}).json()["name"]
    response = api.get(
        f"/api/v1/workspaces/default/jobs/{name}/logs", params={"file": "../../../mill.db"}
    )
    assert response.status_code == 400 and "inside the job" in response.json()["message"]


def test_job_events_need_the_jobs_own_token(api: TestClient) -> None:
    name = api.post("/api/v1/workspaces/default/jobs", json={"command": "true"}).json()["name"]
    job_id = 1
    response = api.post(
        f"/api/v1/runtime/jobs/{job_id}/events",
        json={"status": "Completed"},
        headers={"Authorization": "Bearer guessed"},
    )
    assert response.status_code == 401
    assert api.get(f"/api/v1/workspaces/default/jobs/{name}").json()["status"] == "NotStarted"


def test_server_token_is_checked_on_every_request(ctx: Context) -> None:
    with TestClient(create_app(ctx, token="s3cret", run_loops=False)) as client:
        assert client.get("/healthz").status_code == 200
        denied = client.get("/api/v1/workspaces")
        assert denied.status_code == 401 and denied.json()["code"] == "unauthorized"
        wrong = client.get("/api/v1/workspaces", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = client.get("/api/v1/workspaces", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "s3cret" not in denied.text
