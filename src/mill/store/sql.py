"""SqlStore: every query Mill makes, on SQLite or PostgreSQL, returning domain entities."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from mill.domain.entities import (
    Compute,
    Datastore,
    EnvironmentAsset,
    Job,
    StatusChange,
    Workspace,
)
from mill.domain.status import ACTIVE, JobStatus, can_move
from mill.errors import ConflictError, NotFoundError, ServerUnavailableError
from mill.store import migrate
from mill.store.assets import AssetStoreMixin, _datastore
from mill.store.endpoints import EndpointStoreMixin
from mill.store.engine import make_engine
from mill.store.models import ModelStoreMixin
from mill.store.tables import (
    ComputeRow,
    DataAssetRow,
    DatastoreRow,
    EnvironmentRow,
    JobRow,
    RegisteredModelRow,
    SecretRow,
    SnapshotRow,
    WorkspaceRow,
)
from mill.store.tracking_tables import ExperimentRow, MetricRow, RunRow

__all__ = ["JobQuery", "SqlStore"]


class JobQuery:
    """Filters for listing jobs."""

    def __init__(
        self,
        *,
        experiment_name: str | None = None,
        status: str | None = None,
        include_archived: bool = False,
        archived_only: bool = False,
        limit: int = 50,
    ) -> None:
        self.experiment_name = experiment_name
        self.status = status
        self.include_archived = include_archived
        self.archived_only = archived_only
        self.limit = limit


class SqlStore(AssetStoreMixin, ModelStoreMixin, EndpointStoreMixin):
    """The one store implementation, selected by URL (``sqlite:///`` or ``postgresql://``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        try:
            migrate.upgrade(self.engine)
        except OperationalError as exc:
            raise ServerUnavailableError(
                f"cannot open the metadata store: {exc.orig}",
                hint="check MILL_DATABASE_URL and that the database server is running",
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # Workspaces -------------------------------------------------------------------
    def create_workspace(self, workspace: Workspace) -> Workspace:
        row = WorkspaceRow(
            name=workspace.name,
            description=workspace.description,
            tags=dict(workspace.tags),
            created_at=workspace.created_at or time.time(),
        )
        try:
            with self._session() as s:
                s.add(row)
                s.flush()
                return _workspace(row)
        except IntegrityError as exc:
            raise ConflictError(f"workspace {workspace.name!r} already exists") from exc

    def get_workspace(self, name: str) -> Workspace:
        with self._session() as s:
            return _workspace(self._workspace_row(s, name))

    def find_workspace(self, name: str) -> Workspace | None:
        with self._session() as s:
            row = s.scalar(select(WorkspaceRow).where(WorkspaceRow.name == name))
            return _workspace(row) if row else None

    def list_workspaces(self) -> list[Workspace]:
        with self._session() as s:
            return [
                _workspace(r) for r in s.scalars(select(WorkspaceRow).order_by(WorkspaceRow.name))
            ]

    def delete_workspace(self, name: str) -> None:
        with self._session() as s:
            row = self._workspace_row(s, name)
            for table in (
                JobRow,
                SnapshotRow,
                ComputeRow,
                DatastoreRow,
                EnvironmentRow,
                SecretRow,
                DataAssetRow,
                RegisteredModelRow,
            ):
                s.execute(delete(table).where(table.workspace_id == row.id))
            # Metric points have no foreign key to cascade along (migration 0008).
            runs = (
                select(RunRow.run_uuid)
                .join(ExperimentRow, ExperimentRow.id == RunRow.experiment_id)
                .where(ExperimentRow.workspace_id == row.id)
            )
            s.execute(delete(MetricRow).where(MetricRow.run_uuid.in_(runs)))
            s.delete(row)

    # Datastores -------------------------------------------------------------------
    def add_datastore(self, datastore: Datastore) -> Datastore:
        try:
            with self._session() as s:
                ws = self._workspace_row(s, datastore.workspace)
                row = DatastoreRow(
                    workspace_id=ws.id,
                    name=datastore.name,
                    type=datastore.type,
                    config=dict(datastore.config),
                    is_default=datastore.is_default,
                    created_at=datastore.created_at or time.time(),
                    description=datastore.description,
                    tags=dict(datastore.tags),
                )
                s.add(row)
                s.flush()
                return _datastore(row, ws.name)
        except IntegrityError as exc:
            raise ConflictError(f"datastore {datastore.name!r} already exists") from exc

    def list_datastores(self, workspace: str) -> list[Datastore]:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            rows = s.scalars(
                select(DatastoreRow)
                .where(DatastoreRow.workspace_id == ws.id)
                .order_by(DatastoreRow.name)
            )
            return [_datastore(r, ws.name) for r in rows]

    def get_datastore(self, workspace: str, name: str) -> Datastore:
        for datastore in self.list_datastores(workspace):
            if datastore.name == name:
                return datastore
        known = ", ".join(d.name for d in self.list_datastores(workspace))
        raise NotFoundError(
            f"datastore {name!r} not found in workspace {workspace!r}; known: {known}"
        )

    # Computes ---------------------------------------------------------------------
    def add_compute(self, compute: Compute) -> Compute:
        try:
            with self._session() as s:
                ws = self._workspace_row(s, compute.workspace)
                row = ComputeRow(
                    workspace_id=ws.id,
                    name=compute.name,
                    type=compute.type,
                    max_instances=compute.max_instances,
                    description=compute.description,
                    created_at=compute.created_at or time.time(),
                )
                s.add(row)
                s.flush()
                return _compute(row, ws.name)
        except IntegrityError as exc:
            raise ConflictError(
                f"compute {compute.name!r} already exists in workspace {compute.workspace!r}"
            ) from exc

    def list_computes(self, workspace: str) -> list[Compute]:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            rows = s.scalars(
                select(ComputeRow).where(ComputeRow.workspace_id == ws.id).order_by(ComputeRow.name)
            )
            return [_compute(r, ws.name) for r in rows]

    def delete_compute(self, workspace: str, name: str) -> None:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            result = s.execute(
                delete(ComputeRow).where(ComputeRow.workspace_id == ws.id, ComputeRow.name == name)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                raise NotFoundError(f"compute {name!r} not found in workspace {workspace!r}")

    # Environments -----------------------------------------------------------------
    def add_environment(self, env: EnvironmentAsset) -> EnvironmentAsset:
        try:
            with self._session() as s:
                ws = self._workspace_row(s, env.workspace)
                row = EnvironmentRow(
                    workspace_id=ws.id,
                    name=env.name,
                    version=env.version,
                    definition=env.definition,
                    description=env.description,
                    tags=dict(env.tags),
                    archived=env.archived,
                    created_at=env.created_at or time.time(),
                )
                s.add(row)
                s.flush()
                return _environment(row, ws.name)
        except IntegrityError as exc:
            raise ConflictError(
                f"environment {env.name!r} version {env.version!r} already exists; "
                "versions are immutable",
                hint="leave --version out to get the next one",
            ) from exc

    def list_environments(
        self, workspace: str, name: str | None = None, include_archived: bool = False
    ) -> list[EnvironmentAsset]:
        """Every version (of ``name``, or of all names), oldest first."""
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            stmt = select(EnvironmentRow).where(EnvironmentRow.workspace_id == ws.id)
            if name is not None:
                stmt = stmt.where(EnvironmentRow.name == name)
            if not include_archived:
                stmt = stmt.where(EnvironmentRow.archived.is_(False))
            rows = s.scalars(stmt.order_by(EnvironmentRow.name, EnvironmentRow.id))
            return [_environment(r, ws.name) for r in rows]

    def update_environment(
        self, workspace: str, name: str, version: str, change: Callable[[EnvironmentAsset], None]
    ) -> EnvironmentAsset:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(
                select(EnvironmentRow)
                .where(
                    EnvironmentRow.workspace_id == ws.id,
                    EnvironmentRow.name == name,
                    EnvironmentRow.version == version,
                )
                .with_for_update()
            )
            if row is None:
                raise NotFoundError(f"environment {name!r} version {version!r} not found")
            env = _environment(row, ws.name)
            change(env)
            row.description = env.description
            row.tags = dict(env.tags)
            row.archived = env.archived
            return env

    # Snapshots --------------------------------------------------------------------
    def add_snapshot(self, workspace: str, digest: str, file_count: int, size_bytes: int) -> bool:
        """Record a snapshot; False when the same snapshot was already there."""
        with self._session() as s:
            workspace_id = self._workspace_row(s, workspace).id
            exists = s.scalar(
                select(SnapshotRow.id).where(
                    SnapshotRow.workspace_id == workspace_id, SnapshotRow.digest == digest
                )
            )
            if exists:
                return False
        try:
            with self._session() as s:
                s.add(
                    SnapshotRow(
                        workspace_id=workspace_id,
                        digest=digest,
                        file_count=file_count,
                        size_bytes=size_bytes,
                        created_at=time.time(),
                    )
                )
            return True
        except IntegrityError:  # the same files, uploaded by a concurrent request
            return False

    def has_snapshot(self, workspace: str, digest: str) -> bool:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            return bool(
                s.scalar(
                    select(SnapshotRow.id).where(
                        SnapshotRow.workspace_id == ws.id, SnapshotRow.digest == digest
                    )
                )
            )

    # Jobs -------------------------------------------------------------------------
    def insert_job(self, job: Job) -> Job:
        try:
            with self._session() as s:
                ws = self._workspace_row(s, job.workspace)
                row = JobRow(workspace_id=ws.id)
                _fill_job_row(row, job)
                s.add(row)
                s.flush()
                return _job(row, ws.name)
        except IntegrityError as exc:
            raise ConflictError(
                f"a job named {job.name!r} already exists in workspace {job.workspace!r}",
                hint="pick another --name, or leave it out to get a generated one",
            ) from exc

    def get_job(self, workspace: str, name: str) -> Job:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            row = s.scalar(select(JobRow).where(JobRow.workspace_id == ws.id, JobRow.name == name))
            if row is None:
                raise NotFoundError(f"job {name!r} not found in workspace {workspace!r}")
            return _job(row, ws.name)

    def has_job(self, workspace: str, name: str) -> bool:
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            found = s.scalar(
                select(JobRow.id).where(JobRow.workspace_id == ws.id, JobRow.name == name)
            )
            return found is not None

    def get_job_by_id(self, job_id: int) -> Job:
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"job id {job_id} not found")
            return _job(row, self._workspace_name(s, row.workspace_id))

    def list_jobs(self, workspace: str, query: JobQuery | None = None) -> list[Job]:
        q = query or JobQuery()
        with self._session() as s:
            ws = self._workspace_row(s, workspace)
            stmt = select(JobRow).where(JobRow.workspace_id == ws.id)
            if q.experiment_name:
                stmt = stmt.where(JobRow.experiment_name == q.experiment_name)
            if q.status:
                stmt = stmt.where(JobRow.status == q.status)
            if q.archived_only:
                stmt = stmt.where(JobRow.archived.is_(True))
            elif not q.include_archived:
                stmt = stmt.where(JobRow.archived.is_(False))
            stmt = stmt.order_by(JobRow.id.desc()).limit(q.limit)
            return [_job(r, ws.name) for r in s.scalars(stmt)]

    def has_active_job_token(self, token_hash: str) -> bool:
        """Whether a running job holds the token with this hash (jobs call MLflow with it)."""
        with self._session() as s:
            found = s.scalar(
                select(JobRow.id)
                .where(
                    JobRow.callback_token_hash == token_hash,
                    JobRow.status.in_([a.value for a in ACTIVE]),
                )
                .limit(1)
            )
            return found is not None

    def active_job_for_token(self, token_hash: str) -> Job | None:
        """The running job holding the token with this hash, if any."""
        with self._session() as s:
            ws_name = WorkspaceRow.name
            found = s.execute(
                select(JobRow, ws_name)
                .join(WorkspaceRow, WorkspaceRow.id == JobRow.workspace_id)
                .where(
                    JobRow.callback_token_hash == token_hash,
                    JobRow.status.in_([a.value for a in ACTIVE]),
                )
                .limit(1)
            ).first()
            return _job(found[0], found[1]) if found else None

    def jobs_in(self, statuses: Iterable[JobStatus]) -> list[Job]:
        """Jobs of every workspace in the given statuses, oldest first."""
        values = [s.value for s in statuses]
        with self._session() as s:
            names = {
                ws_id: name for ws_id, name in s.execute(select(WorkspaceRow.id, WorkspaceRow.name))
            }
            rows = s.scalars(select(JobRow).where(JobRow.status.in_(values)).order_by(JobRow.id))
            return [_job(r, names[r.workspace_id]) for r in rows]

    def any_job_in(self, statuses: Iterable[JobStatus]) -> bool:
        """Whether any job of any workspace is in one of ``statuses`` (one indexed probe)."""
        values = [s.value for s in statuses]
        with self.engine.connect() as conn:
            found = conn.scalar(select(JobRow.id).where(JobRow.status.in_(values)).limit(1))
        return found is not None

    def active_slots(self) -> dict[tuple[str, str], int]:
        """Slots held per (workspace, compute) by jobs that are preparing, running or finalizing."""
        with self._session() as s:
            stmt = (
                select(WorkspaceRow.name, JobRow.compute, func.sum(JobRow.slots))
                .join(WorkspaceRow, WorkspaceRow.id == JobRow.workspace_id)
                .where(JobRow.status.in_([a.value for a in ACTIVE]))
                .group_by(WorkspaceRow.name, JobRow.compute)
            )
            return {(ws, compute): int(n or 0) for ws, compute, n in s.execute(stmt)}

    def update_job(self, job_id: int, change: Callable[[Job], bool]) -> Job | None:
        """Read the job under a row lock, let ``change`` edit it, write it back if it says so.

        Returns the updated job, or None when ``change`` declined (e.g. the job had already
        moved on). Row locking makes concurrent updates (API, scheduler, job events) safe on
        PostgreSQL; SQLite serialises writers anyway.
        """
        with self._session() as s:
            row = s.scalar(select(JobRow).where(JobRow.id == job_id).with_for_update())
            if row is None:
                raise NotFoundError(f"job id {job_id} not found")
            job = _job(row, self._workspace_name(s, row.workspace_id))
            if not change(job):
                return None
            _fill_job_row(row, job)
            return job

    def transition(
        self, job_id: int, status: JobStatus, at: float | None = None, **fields: Any
    ) -> Job | None:
        """Move a job to ``status`` if the state machine allows it, setting ``fields`` too."""
        when = at if at is not None else time.time()

        def change(job: Job) -> bool:
            if not can_move(job.status, status):
                return False
            job.status = status
            job.history = [*job.history, StatusChange(status, when)]
            if status == JobStatus.RUNNING and job.started_at is None:
                job.started_at = when
            if status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
                job.ended_at = when
            for key, value in fields.items():
                setattr(job, key, value)
            return True

        return self.update_job(job_id, change)

    # Helpers ----------------------------------------------------------------------
    @staticmethod
    def _workspace_row(s: Session, name: str) -> WorkspaceRow:
        row = s.scalar(select(WorkspaceRow).where(WorkspaceRow.name == name))
        if row is None:
            known = ", ".join(s.scalars(select(WorkspaceRow.name).order_by(WorkspaceRow.name)))
            raise NotFoundError(
                f"workspace {name!r} not found; known workspaces: {known or 'none'}",
                hint="create it with: mill workspace create --name " + name,
            )
        return row

    @staticmethod
    def _workspace_name(s: Session, workspace_id: int) -> str:
        return str(s.scalar(select(WorkspaceRow.name).where(WorkspaceRow.id == workspace_id)))


def _workspace(row: WorkspaceRow) -> Workspace:
    return Workspace(
        id=row.id,
        name=row.name,
        description=row.description,
        tags=dict(row.tags or {}),
        created_at=row.created_at,
    )


def _compute(row: ComputeRow, workspace: str) -> Compute:
    return Compute(
        workspace=workspace,
        name=row.name,
        type=row.type,
        max_instances=row.max_instances,
        description=row.description,
        created_at=row.created_at,
    )


def _environment(row: EnvironmentRow, workspace: str) -> EnvironmentAsset:
    return EnvironmentAsset(
        workspace=workspace,
        name=row.name,
        version=row.version,
        definition=row.definition,
        description=row.description,
        tags=dict(row.tags or {}),
        archived=row.archived,
        created_at=row.created_at,
    )


def _job(row: JobRow, workspace: str) -> Job:
    return Job(
        id=row.id,
        workspace=workspace,
        name=row.name,
        type=row.type,
        status=JobStatus(row.status),
        compute=row.compute,
        experiment_name=row.experiment_name,
        display_name=row.display_name,
        description=row.description,
        spec=row.spec,
        tags=dict(row.tags or {}),
        properties=dict(row.properties or {}),
        slots=row.slots,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        history=[StatusChange(JobStatus(h["status"]), h["at"]) for h in row.history or []],
        exit_code=row.exit_code,
        error=row.error,
        handle=row.handle,
        run_dir=row.run_dir,
        snapshot_id=row.snapshot_id,
        callback_token_hash=row.callback_token_hash,
        archived=row.archived,
        environment_key=row.environment_key,
        environment_info=row.environment_info,
    )


def _fill_job_row(row: JobRow, job: Job) -> None:
    row.name = job.name
    row.type = job.type
    row.status = job.status.value
    row.compute = job.compute
    row.experiment_name = job.experiment_name
    row.display_name = job.display_name
    row.description = job.description
    row.spec = job.spec
    row.tags = dict(job.tags)
    row.properties = dict(job.properties)
    row.slots = job.slots
    row.created_at = job.created_at or time.time()
    row.started_at = job.started_at
    row.ended_at = job.ended_at
    row.history = [h.to_dict() for h in job.history]
    row.exit_code = job.exit_code
    row.error = job.error
    row.handle = job.handle
    row.run_dir = job.run_dir
    row.snapshot_id = job.snapshot_id
    row.callback_token_hash = job.callback_token_hash
    row.archived = job.archived
    row.environment_key = job.environment_key
    row.environment_info = job.environment_info
