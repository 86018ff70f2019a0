"""Fixtures shared by every test layer: databases (SQLite and PostgreSQL) and Mill homes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import storage_servers

POSTGRES_ENV = "MILL_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def _require_postgres() -> bool:
    return os.environ.get("MILL_REQUIRE_POSTGRES") == "1"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The PostgreSQL server the tests may create databases on, or a skip that says why."""
    url = _postgres_admin_url()
    reason = f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)"
    if url is None:
        if _require_postgres():
            pytest.fail(reason + "; MILL_REQUIRE_POSTGRES=1 makes this an error")
        pytest.skip(reason)
    try:
        import psycopg

        with psycopg.connect(_libpq(url), connect_timeout=5):
            pass
    except Exception as exc:  # any failure to connect means: no PostgreSQL here
        if _require_postgres():
            pytest.fail(f"PostgreSQL at {url} does not answer: {exc}")
        pytest.skip(f"PostgreSQL at {url} does not answer: {exc}")
    return url


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"mill_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_libpq(postgres_admin_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mill.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


# --------------------------------------------------------------------- storage servers
# Real Azurite (blob) and moto (S3) servers on loopback, one of each per test process.
# Missing programs skip with the reason, unless MILL_REQUIRE_STORAGE_SERVERS=1 (as in CI).


def _storage_server_unavailable(reason: str) -> None:
    if os.environ.get("MILL_REQUIRE_STORAGE_SERVERS") == "1":
        pytest.fail(reason + "; MILL_REQUIRE_STORAGE_SERVERS=1 makes this an error")
    print(f"skipping: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[storage_servers.AzuriteServer]:
    """An Azurite blob server: ``account_url``, ``account_name``, ``account_key``;
    ``create_container()`` and ``sas_token()`` for tests."""
    try:
        server = storage_servers.start_azurite(tmp_path_factory.mktemp("azurite"))
    except (storage_servers.ServerMissing, RuntimeError) as exc:
        _storage_server_unavailable(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[storage_servers.S3Server]:
    """A moto S3 server with IAM auth: ``endpoint_url``, ``access_key_id``,
    ``secret_access_key``, ``region``; ``create_bucket()`` for tests."""
    try:
        server = storage_servers.start_s3()
    except (storage_servers.ServerMissing, RuntimeError) as exc:
        _storage_server_unavailable(str(exc))
        raise
    try:
        yield server
    finally:
        server.stop()
