"""Engines for SQLite (WAL, busy timeout) and PostgreSQL, chosen by URL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError

from mill.errors import UsageError

__all__ = ["make_engine"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# A pooled PostgreSQL connection idle this long is pinged before use (a restarted or
# restarting database leaves dead ones in the pool); a busy one is not.
PING_AFTER_IDLE_S = 5.0


def make_engine(url: str, ping_after_idle_s: float = PING_AFTER_IDLE_S) -> Engine:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":  # plain postgresql:// means psycopg 3 here
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_size=10, max_overflow=20)
        _ping_after_idle(engine, ping_after_idle_s)
        return engine
    raise UsageError(
        f"unsupported MILL_DATABASE_URL backend {backend!r}",
        hint="use sqlite:///path/to/mill.db or postgresql+psycopg://user@host/db",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _ping_after_idle(engine: Engine, idle_s: float) -> None:
    """SQLAlchemy's ``pool_pre_ping``, but only for connections idle ``idle_s`` or more.

    Pre-ping costs a round trip on every checkout, a fifth of a single log_metric's server
    time on PostgreSQL (measured); a connection used a moment ago is as good as the ping
    would say. After a database restart the pool's idle connections are found dead here and
    replaced (``DisconnectionError`` makes the pool retry with a new one); a request already
    running when the database went away fails either way, and SQLAlchemy then discards the
    rest of the pool."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_s:
            return  # new, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
            dbapi_connection.rollback()  # the ping opened a transaction: leave none behind
        except Exception as exc:  # any failure: a dead connection, replaced by the pool
            raise DisconnectionError(f"a pooled connection did not answer: {exc}") from exc
