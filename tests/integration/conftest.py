"""Fixtures for the in-process API tests: a Context on each database, and its app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mill.compute.local import LocalRunner
from mill.config import Settings
from mill.server.app import create_app
from mill.services.context import Context
from mill.store import SqlStore


@pytest.fixture
def ctx(db_url: str, tmp_path: Path) -> Iterator[Context]:
    """Services' context on SQLite and on PostgreSQL (via ``db_url``), home under tmp_path."""
    settings = Settings(home=tmp_path / "home", database_url=db_url)
    context = Context(settings=settings, store=SqlStore(db_url), runner=LocalRunner())
    yield context
    context.store.dispose()


@pytest.fixture
def api(ctx: Context) -> Iterator[TestClient]:
    """The real app in-process (no background loops); server errors answer 500. Requests
    come from 127.0.0.1, as from a client on the server's machine."""
    with TestClient(
        create_app(ctx, run_loops=False),
        raise_server_exceptions=False,
        client=("127.0.0.1", 50000),
    ) as client:
        yield client
