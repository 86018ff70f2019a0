"""The store contract, run on SQLite and on PostgreSQL (see the db_url fixture)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from mill.domain.entities import (
    Compute,
    Datastore,
    Job,
    OnlineDeployment,
    OnlineEndpoint,
    Workspace,
)
from mill.domain.status import JobStatus
from mill.errors import ConflictError, NotFoundError
from mill.store import SqlStore
from mill.store.migrate import current_revision, head_revision
from mill.store.sql import JobQuery
from mill.store.tables import Base


@pytest.fixture
def store(db_url: str) -> SqlStore:
    s = SqlStore(db_url)
    s.migrate()
    s.create_workspace(Workspace("ws"))
    yield s
    s.dispose()


def _job(name: str, **kw: object) -> Job:
    fields: dict[str, object] = {
        "workspace": "ws",
        "name": name,
        "type": "command",
        "spec": {"command": "echo"},
        "compute": "local",
        "experiment_name": "exp",
    }
    fields.update(kw)
    return Job(**fields)  # type: ignore[arg-type]


def test_migrations_match_the_models_and_are_idempotent(store: SqlStore) -> None:
    store.migrate()  # a second upgrade is a no-op
    assert current_revision(store.engine) == head_revision()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], (
        "the tables in store/tables.py differ from the migrations; add a revision under "
        f"src/mill/store/migrations/versions/ that makes this list empty: {diff}"
    )


def test_workspaces(store: SqlStore) -> None:
    with pytest.raises(ConflictError, match="already exists"):
        store.create_workspace(Workspace("ws"))
    store.create_workspace(Workspace("other", description="d", tags={"team": "a"}))
    assert [w.name for w in store.list_workspaces()] == ["other", "ws"]
    assert store.get_workspace("other").tags == {"team": "a"}
    store.delete_workspace("other")
    with pytest.raises(NotFoundError, match="known workspaces: ws"):
        store.get_workspace("other")


def test_datastores_and_computes(store: SqlStore) -> None:
    store.add_datastore(Datastore("ws", "blob", "local", {"path": "/x"}, is_default=True))
    with pytest.raises(ConflictError):
        store.add_datastore(Datastore("ws", "blob", "local", {"path": "/y"}))
    assert store.get_datastore("ws", "blob").config == {"path": "/x"}
    with pytest.raises(NotFoundError, match="known: blob"):
        store.get_datastore("ws", "nope")
    store.add_compute(Compute("ws", "cpu", "local", 2))
    with pytest.raises(ConflictError):
        store.add_compute(Compute("ws", "cpu", "local", 3))
    assert [(c.name, c.max_instances) for c in store.list_computes("ws")] == [("cpu", 2)]
    store.delete_compute("ws", "cpu")
    with pytest.raises(NotFoundError):
        store.delete_compute("ws", "cpu")


def test_jobs_insert_list_and_names_unique_per_workspace(store: SqlStore) -> None:
    first = store.insert_job(
        _job("a", spec={"command": "echo", "inputs": {"x": {"type": "string"}}})
    )
    store.insert_job(_job("b", experiment_name="other"))
    with pytest.raises(ConflictError, match="already exists"):
        store.insert_job(_job("a"))
    store.create_workspace(Workspace("ws2"))
    store.insert_job(_job("a", workspace="ws2"))  # same name, other workspace: fine
    assert store.get_job("ws", "a").spec == first.spec
    assert [j.name for j in store.list_jobs("ws")] == ["b", "a"]  # newest first
    assert [j.name for j in store.list_jobs("ws", JobQuery(experiment_name="other"))] == ["b"]
    with pytest.raises(NotFoundError, match="job 'zz' not found"):
        store.get_job("ws", "zz")


def test_transitions_are_forward_only_and_record_history(store: SqlStore) -> None:
    job = store.insert_job(_job("t"))
    assert job.id is not None
    assert store.transition(job.id, JobStatus.QUEUED, at=1.0)
    assert store.transition(job.id, JobStatus.RUNNING, at=2.0)
    assert store.transition(job.id, JobStatus.PREPARING, at=3.0) is None
    done = store.transition(
        job.id, JobStatus.FAILED, at=4.0, exit_code=3, error={"message": "boom"}
    )
    assert done is not None and done.ended_at == 4.0 and done.started_at == 2.0
    assert store.transition(job.id, JobStatus.COMPLETED) is None
    stored = store.get_job("ws", "t")
    assert [(h.status, h.at) for h in stored.history] == [
        (JobStatus.QUEUED, 1.0),
        (JobStatus.RUNNING, 2.0),
        (JobStatus.FAILED, 4.0),
    ]
    assert stored.exit_code == 3 and stored.error == {"message": "boom"}


def test_queue_order_and_active_slots(store: SqlStore) -> None:
    ids = [store.insert_job(_job(f"q{i}", compute="cpu", slots=2)).id for i in range(3)]
    for job_id in ids:
        assert job_id is not None
        store.transition(job_id, JobStatus.QUEUED)
    assert [j.name for j in store.jobs_in([JobStatus.QUEUED])] == ["q0", "q1", "q2"]
    assert ids[0] is not None and ids[1] is not None
    store.transition(ids[0], JobStatus.RUNNING)
    store.transition(ids[1], JobStatus.PREPARING)
    assert store.active_slots() == {("ws", "cpu"): 4}
    store.transition(ids[0], JobStatus.COMPLETED)
    assert store.active_slots() == {("ws", "cpu"): 2}


def test_snapshots_are_recorded_once(store: SqlStore) -> None:
    digest = "a" * 64
    assert store.add_snapshot("ws", digest, 2, 10)
    assert not store.add_snapshot("ws", digest, 2, 10)
    assert store.has_snapshot("ws", digest) and not store.has_snapshot("ws", "b" * 64)


def test_concurrent_uploads_of_one_snapshot_record_it_once(store: SqlStore) -> None:
    """Four `mill job create` of one folder at once all record the same snapshot."""
    for round_ in range(5):
        digest = f"{round_:x}" * 64
        results, errors = _all_at_once(6, lambda d=digest: store.add_snapshot("ws", d, 1, 1))
        assert not errors, errors
        assert sorted(results) == [False] * 5 + [True]


def _all_at_once(n: int, call: Callable[[], object]) -> tuple[list[object], list[BaseException]]:
    """Run ``call`` in ``n`` threads released together; what each returned or raised."""
    start = threading.Barrier(n)
    results: list[object] = []
    errors: list[BaseException] = []

    def one() -> None:
        start.wait()
        try:
            results.append(call())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def test_deleting_a_workspace_removes_its_rows(store: SqlStore) -> None:
    store.create_workspace(Workspace("gone"))
    store.insert_job(_job("j", workspace="gone"))
    store.add_compute(Compute("gone", "c1", "local", 1))
    store.delete_workspace("gone")
    store.create_workspace(Workspace("gone"))
    assert store.list_jobs("gone") == [] and store.list_computes("gone") == []


def test_environment_versions(store: SqlStore) -> None:
    from mill.domain.entities import EnvironmentAsset

    store.add_environment(EnvironmentAsset("ws", "env", "1", {"image": "python:3.11"}))
    store.add_environment(
        EnvironmentAsset("ws", "env", "2", {"image": "python:3.12"}, tags={"a": "b"})
    )
    store.add_environment(EnvironmentAsset("ws", "other", "1", {"image": "python"}))
    with pytest.raises(ConflictError, match="immutable"):
        store.add_environment(EnvironmentAsset("ws", "env", "1", {"image": "x"}))
    assert [e.version for e in store.list_environments("ws", "env")] == ["1", "2"]

    def archive(e: EnvironmentAsset) -> None:
        e.archived = True

    store.update_environment("ws", "env", "2", archive)
    assert [e.version for e in store.list_environments("ws", "env")] == ["1"]
    everything = store.list_environments("ws", "env", include_archived=True)
    assert everything[1].archived and everything[1].tags == {"a": "b"}
    with pytest.raises(NotFoundError):
        store.update_environment("ws", "env", "9", archive)


def test_upgrading_a_database_of_the_first_version_keeps_its_jobs(db_url: str) -> None:
    from mill.store.migrate import upgrade

    old = SqlStore(db_url)
    upgrade(old.engine, "0001")
    with old.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO workspaces (name, tags, created_at) VALUES ('ws', '{}', 1.0)"
        )
        conn.exec_driver_sql(
            "INSERT INTO jobs (workspace_id, name, type, status, compute, experiment_name, spec,"
            " tags, properties, slots, created_at, history, archived) VALUES (1, 'old-job',"
            " 'command', 'Completed', 'local', 'e', '{\"command\": \"echo\"}', '{}', '{}', 1, 2.0,"
            " '[]', false)"
        )
    old.migrate()
    assert current_revision(old.engine) == head_revision()
    job = old.get_job("ws", "old-job")
    assert job.spec == {"command": "echo"} and job.environment_key is None
    old.dispose()


def test_online_endpoints_and_deployments(store: SqlStore) -> None:
    store.create_endpoint(OnlineEndpoint(workspace="ws", name="ep", auth_mode="aml_token"))
    with pytest.raises(ConflictError):
        store.create_endpoint(OnlineEndpoint(workspace="ws", name="ep"))
    store.create_deployment(
        OnlineDeployment(endpoint="ep", name="blue", kind="code", spec={"instance_count": 2})
    )
    with pytest.raises(ConflictError):
        store.create_deployment(OnlineDeployment(endpoint="ep", name="blue", kind="code", spec={}))
    store.create_deployment(OnlineDeployment(endpoint="ep", name="green", kind="onnx", spec={}))

    def bump(d: OnlineDeployment) -> None:
        d.state, d.generation = "Updating", d.generation + 1

    assert store.update_deployment("ep", "blue", bump).generation == 2
    shown = store.get_deployment("ep", "blue")
    assert (shown.state, shown.generation, shown.spec) == ("Updating", 2, {"instance_count": 2})

    def route(e: OnlineEndpoint) -> None:
        e.traffic = {"blue": 90, "green": 10}

    store.update_endpoint("ep", route)
    endpoint = store.get_endpoint("ep")
    assert (endpoint.workspace, endpoint.auth_mode) == ("ws", "aml_token")
    assert endpoint.traffic == {"blue": 90, "green": 10}
    assert [d.name for d in store.list_deployments("ep")] == ["blue", "green"]
    with pytest.raises(NotFoundError) as missing:
        store.get_deployment("ep", "purple")
    assert missing.value.details["known"] == ["blue", "green"]
    store.delete_endpoint("ep")  # its deployments go with it
    assert store.list_endpoints() == [] and store.list_deployments() == []
    with pytest.raises(NotFoundError):
        store.get_endpoint("ep")
