"""A tracking store with one run, for store-level tracking tests on either database."""

from __future__ import annotations

from mill.domain.entities import Workspace
from mill.store import SqlStore
from mill.store.tracking import SqlTrackingStore


def store_with_run(url: str, *workspaces: str) -> tuple[SqlStore, SqlTrackingStore, str]:
    """A migrated store at ``url`` with the ``default`` workspace (and ``workspaces``), and
    the id of a new run in a new experiment of ``default``. The caller disposes the store."""
    store = SqlStore(url)
    store.migrate()
    for name in ("default", *workspaces):
        store.create_workspace(Workspace(name))
    tracking = SqlTrackingStore(store)
    run = tracking.create_run("default", tracking.create_experiment("default", "e"))["info"]
    return store, tracking, run["run_id"]
