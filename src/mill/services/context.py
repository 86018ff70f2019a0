"""The services' shared context: settings, store, runner and where files live."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mill.compute.base import Runner
from mill.config import Settings
from mill.storage.blobs import BlobStore
from mill.storage.vault import MasterKey
from mill.store import SqlStore
from mill.store.tracking import SqlTrackingStore

__all__ = ["Context"]


@dataclass
class Context:
    """Everything a service needs, passed explicitly (no module globals)."""

    settings: Settings
    store: SqlStore
    runner: Runner
    server_url: str = ""  # this control plane's own address, for job callbacks
    wakeup: threading.Event = field(default_factory=threading.Event)  # nudges the scheduler
    # Jobs whose outputs are being uploaded after their process ended (see services/staging).
    finalizing: set[int] = field(default_factory=set)
    finalizing_lock: threading.Lock = field(default_factory=threading.Lock)
    # Opened datastore filesystems, reused across requests (see services/datastores._open).
    filesystems: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    filesystems_lock: threading.Lock = field(default_factory=threading.Lock)
    # The scoring gateway and replica supervisor (services.endpoints.ServingPlane), when
    # this process serves online endpoints.
    serving: Any = None

    @cached_property
    def background(self) -> ThreadPoolExecutor:
        """Work that must not hold up a request: uploading finished jobs' outputs."""
        return ThreadPoolExecutor(max_workers=2, thread_name_prefix="mill-finalize")

    @cached_property
    def tracking(self) -> SqlTrackingStore:
        """Experiments, runs and metrics (the MLflow side), on the same database."""
        return SqlTrackingStore(self.store, durable_metrics=not self.settings.tracking_async_commit)

    @cached_property
    def vault(self) -> MasterKey:
        """The vault's master key, loaded (or its key file made) on first use."""
        return MasterKey.load(self.settings)

    def workspace_root(self, workspace: str) -> Path:
        return self.settings.workspace_root(workspace)

    def blobs(self, workspace: str) -> BlobStore:
        return BlobStore(self.workspace_root(workspace) / "blobs")

    def manifests_dir(self, workspace: str) -> Path:
        return self.workspace_root(workspace) / "snapshots"

    def run_dir(self, workspace: str, job_name: str) -> Path:
        return self.workspace_root(workspace) / "runs" / job_name
