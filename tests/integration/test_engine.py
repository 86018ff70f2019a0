"""PostgreSQL engines: pooled connections that went dead are replaced."""

from __future__ import annotations

import time

import psycopg
import pytest
from psycopg import OperationalError
from sqlalchemy import text
from tests.tracking_stores import store_with_run

from mill.store.engine import make_engine


def _terminate_other_sessions(admin_url: str, database: str) -> int:
    with psycopg.connect(admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def test_idle_connections_killed_by_the_database_are_replaced(postgres_url: str) -> None:
    engine = make_engine(postgres_url, ping_after_idle_s=0.2)
    try:
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT 1")) == 1
        # What a database restart does to the pool: its connections die while idle.
        database = postgres_url.rsplit("/", 1)[1]
        assert _terminate_other_sessions(postgres_url, database) == 1
        time.sleep(0.3)
        with engine.connect() as conn:  # pinged, found dead, replaced: no error
            assert conn.scalar(text("SELECT 2")) == 2
            # and the ping left no transaction open on the new connection's behalf
            assert (
                conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                    )
                )
                == 0
            )
    finally:
        engine.dispose()


def test_a_connection_lost_in_a_one_statement_write_is_not_pooled_again(
    postgres_url: str,
) -> None:
    """A log_metric on PostgreSQL runs on the pool's raw connection: when the database drops
    it, that call fails, and the next one (no idle ping in between) gets a new connection."""
    store, tracking, run = store_with_run(postgres_url)
    point = {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}
    tracking.log_batch(run, metrics=[point])  # the pool now holds one connection
    database = postgres_url.rsplit("/", 1)[1]
    assert _terminate_other_sessions(postgres_url, database) == 1
    with pytest.raises(OperationalError):
        tracking.log_batch(run, metrics=[point])
    tracking.log_batch(run, metrics=[{**point, "step": 1}])
    assert [step for _, _, step, _ in tracking.metric_history(run, "m")] == [0, 1]
    with store.engine.connect() as conn:  # nothing left idle in a transaction either
        idle = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
        assert conn.scalar(text(idle)) == 0
    store.dispose()
