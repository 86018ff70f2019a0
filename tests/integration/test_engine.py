"""PostgreSQL engines: pooled connections that went dead while idle are replaced, unseen."""

from __future__ import annotations

import time

import psycopg
from sqlalchemy import text

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
