"""SqlTrackingStore: MLflow-compatible experiments, runs and metrics on SQLite or PostgreSQL.

Written with SQLAlchemy Core (no ORM objects) because metric logging and history reads are
the hot paths: a batch is one transaction with bulk inserts, and ``latest_metrics`` is
upserted in the same transaction so searches filter and sort on one row per (run, key).

Experiment ids are global integers, but every workspace has its own ``Default``
experiment, which the MLflow wire calls ``"0"``; :meth:`_experiment_pk` translates.
Results are plain dicts shaped like MLflow's entities (``info``/``data``/``inputs``).
Errors are Mill's: NotFoundError, ConflictError (already exists), UsageError (bad input).
"""

from __future__ import annotations

import json
import math
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal, cast, get_args

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mill.errors import ConflictError, NotFoundError, UsageError
from mill.store.engine import make_engine
from mill.store.tables import WorkspaceRow
from mill.store.tracking_filters import (
    EXPERIMENT_ATTRIBUTES,
    Clause,
    OrderBy,
    parse_experiment_filter,
    parse_filter,
    parse_order_by,
)
from mill.store.tracking_tables import (
    ExperimentRow,
    ExperimentTagRow,
    LatestMetricRow,
    LoggedModelMetricRow,
    LoggedModelRow,
    MetricRow,
    ParamRow,
    RunInputRow,
    RunRow,
    RunTagRow,
)

__all__ = ["SqlTrackingStore", "now_ms"]

WS = cast(Table, WorkspaceRow.__table__)
EXP = cast(Table, ExperimentRow.__table__)
EXP_TAG = cast(Table, ExperimentTagRow.__table__)
RUN = cast(Table, RunRow.__table__)
PARAM = cast(Table, ParamRow.__table__)
TAG = cast(Table, RunTagRow.__table__)
METRIC = cast(Table, MetricRow.__table__)
LATEST = cast(Table, LatestMetricRow.__table__)
INPUT = cast(Table, RunInputRow.__table__)
MODEL = cast(Table, LoggedModelRow.__table__)
MODEL_METRIC = cast(Table, LoggedModelMetricRow.__table__)

ACTIVE, DELETED = "active", "deleted"
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPES = {"ACTIVE_ONLY": (ACTIVE,), "DELETED_ONLY": (DELETED,), "ALL": (ACTIVE, DELETED)}
RUN_NAME_TAG = "mlflow.runName"
LOGGED_MODELS_TAG = "mlflow.log-model.history"  # what MLflow's runs/log-model appends to
DATASET_CONTEXT_TAG = "mlflow.data.context"
MAX_PARAM_VALUE = 6000
_COPY_THRESHOLD = 50  # below this, COPY's set-up costs more than it saves
_COPY_METRICS = (
    "COPY tracking_metrics (run_uuid, key, value, timestamp, step, is_nan) FROM STDIN"
    " (FORMAT BINARY)"  # neither side formats or parses numbers as text: 5-10% of a COPY
)
_INSERT_METRICS_SQLITE = (
    "INSERT INTO tracking_metrics (run_uuid, key, value, timestamp, step, is_nan) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
MAX_RESULTS = 50_000

_ADJECTIVES = ("amber", "bold", "calm", "deft", "eager", "fleet", "glad", "keen", "lucid", "wry")
_NOUNS = ("otter", "heron", "lynx", "finch", "stoat", "crane", "moth", "wren", "vole", "ibis")


def now_ms() -> int:
    return int(time.time() * 1000)


class SqlTrackingStore:
    """Tracking queries; takes a ``SqlStore``, an ``Engine`` or a database URL."""

    def __init__(self, store: Any, durable_metrics: bool = True) -> None:
        """``durable_metrics=False`` (``MILL_TRACKING_ASYNC_COMMIT=1``) lets PostgreSQL
        acknowledge a log-batch before its WAL is flushed (``synchronous_commit = off`` for
        that transaction only): the flush is most of a single log_metric's cost there. A
        PostgreSQL crash (not a Mill crash) can then lose the last fraction of a second of
        acknowledged points, never corrupt them. Durable is the default."""
        if isinstance(store, str):
            engine: Engine = make_engine(store)
        elif isinstance(store, Engine):
            engine = store
        else:
            engine = store.engine
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._ready_workspaces: dict[str, int] = {}
        self._latest_stmt: Any = None
        self._of_runs: dict[str, _RunsQuery] | None = None
        self._async_commit = not durable_metrics and not self._sqlite

    # Transactions -----------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it takes the write lock up front (BEGIN IMMEDIATE),
        so concurrent writers wait on the busy timeout instead of failing to upgrade a read."""
        with self.engine.connect() as conn:
            if self._sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            conn.commit()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _insert(self, table: Any) -> Any:
        return (sqlite.insert if self._sqlite else postgresql.insert)(table)

    # Workspaces and experiments ---------------------------------------------------
    def workspace_id(self, workspace: str) -> int:
        """The workspace's id, creating its Default experiment the first time it is seen."""
        with self._read() as conn:
            ws_id = conn.scalar(select(WS.c.id).where(WS.c.name == workspace))
        if ws_id is None:
            raise NotFoundError(f"workspace {workspace!r} not found")
        if self._ready_workspaces.get(workspace) != ws_id:
            with self._write() as conn:
                if conn.scalar(_default_id_query(ws_id)) is None:
                    ts = now_ms()
                    conn.execute(
                        self._insert(EXP)
                        .values(
                            workspace_id=ws_id,
                            name="Default",
                            is_default=True,
                            artifact_location="mlflow-artifacts:/0",
                            lifecycle_stage=ACTIVE,
                            creation_time=ts,
                            last_update_time=ts,
                        )
                        .on_conflict_do_nothing()
                    )
            self._ready_workspaces[workspace] = ws_id
        return int(ws_id)

    def _experiment_pk(self, conn: Connection, ws_id: int, experiment_id: str | int) -> int:
        text = str(experiment_id)
        if text == "0":
            pk = conn.scalar(_default_id_query(ws_id))
        else:
            try:
                wanted = int(text)
            except ValueError:
                raise UsageError(f"experiment id must be an integer, got {text!r}") from None
            pk = conn.scalar(
                select(EXP.c.id).where(EXP.c.id == wanted, EXP.c.workspace_id == ws_id)
            )
        if pk is None:
            raise NotFoundError(f"No Experiment with id={text} exists")
        return int(pk)

    def ensure_experiment(self, workspace: str, name: str) -> str:
        """The id of the experiment named ``name``, created if missing (for job runs)."""
        found = self.get_experiment_by_name(workspace, name, missing_ok=True)
        if found is not None:
            return str(found["experiment_id"])
        try:
            return self.create_experiment(workspace, name)
        except ConflictError:  # created meanwhile by someone else
            found = self.get_experiment_by_name(workspace, name)
            return str(found["experiment_id"]) if found else ""

    def create_experiment(
        self,
        workspace: str,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        if not name or not name.strip():
            raise UsageError("experiment name must not be empty")
        ws_id = self.workspace_id(workspace)
        ts = now_ms()
        try:
            with self._write() as conn:
                pk = conn.execute(
                    EXP.insert()
                    .values(
                        workspace_id=ws_id,
                        name=name,
                        is_default=False,
                        artifact_location=artifact_location,
                        lifecycle_stage=ACTIVE,
                        creation_time=ts,
                        last_update_time=ts,
                    )
                    .returning(EXP.c.id)
                ).scalar_one()
                if not artifact_location:
                    conn.execute(
                        update(EXP)
                        .where(EXP.c.id == pk)
                        .values(artifact_location=f"mlflow-artifacts:/{pk}")
                    )
                if tags:
                    conn.execute(
                        EXP_TAG.insert(),
                        [{"experiment_id": pk, "key": k, "value": v} for k, v in tags.items()],
                    )
        except IntegrityError as exc:
            raise ConflictError(f"Experiment(name={name}) already exists.") from exc
        return str(pk)

    def get_experiment(self, workspace: str, experiment_id: str) -> dict[str, Any]:
        ws_id = self.workspace_id(workspace)
        with self._read() as conn:
            pk = self._experiment_pk(conn, ws_id, experiment_id)
            return self._experiments(conn, select(EXP).where(EXP.c.id == pk))[0]

    def get_experiment_by_name(
        self, workspace: str, name: str, missing_ok: bool = False
    ) -> dict[str, Any] | None:
        ws_id = self.workspace_id(workspace)
        with self._read() as conn:
            found = self._experiments(
                conn, select(EXP).where(EXP.c.workspace_id == ws_id, EXP.c.name == name)
            )
        if not found and not missing_ok:
            raise NotFoundError(f"Could not find experiment with name '{name}'")
        return found[0] if found else None

    def search_experiments(
        self,
        workspace: str,
        view_type: str = "ACTIVE_ONLY",
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        ws_id = self.workspace_id(workspace)
        stages = _view(view_type)
        stmt = select(EXP).where(EXP.c.workspace_id == ws_id, EXP.c.lifecycle_stage.in_(stages))
        for clause in parse_experiment_filter(filter_string):
            if clause.entity == "tag":
                tag_match = select(EXP_TAG.c.experiment_id).where(
                    EXP_TAG.c.experiment_id == EXP.c.id,
                    EXP_TAG.c.key == clause.key,
                    self._compare(EXP_TAG.c.value, clause),
                )
                stmt = stmt.where(exists(tag_match))
            else:
                stmt = stmt.where(self._compare(EXP.c[_exp_column(clause.key)], clause))
        orders: list[Any] = []
        for order in parse_order_by(order_by, EXPERIMENT_ATTRIBUTES):
            if order.entity != "attribute":
                raise UsageError(f"experiments cannot be ordered by {order.entity}s")
            column = EXP.c[_exp_column(order.key)]
            orders.append(column.asc() if order.ascending else column.desc())
        stmt = stmt.order_by(*orders, EXP.c.creation_time.desc(), EXP.c.id.desc())
        offset, limit = _decode_token(page_token), _limit(max_results)
        with self._read() as conn:
            found = self._experiments(conn, stmt.offset(offset).limit(limit + 1))
        token = _encode_token(offset + limit) if len(found) > limit else None
        return found[:limit], token

    def update_experiment(self, workspace: str, experiment_id: str, new_name: str) -> None:
        if not new_name or not new_name.strip():
            raise UsageError("experiment name must not be empty")
        ws_id = self.workspace_id(workspace)
        try:
            with self._write() as conn:
                pk = self._experiment_pk(conn, ws_id, experiment_id)
                conn.execute(
                    update(EXP)
                    .where(EXP.c.id == pk)
                    .values(name=new_name, last_update_time=now_ms())
                )
        except IntegrityError as exc:
            raise ConflictError(f"Experiment(name={new_name}) already exists.") from exc

    def set_experiment_lifecycle(self, workspace: str, experiment_id: str, stage: str) -> None:
        ws_id = self.workspace_id(workspace)
        with self._write() as conn:
            pk = self._experiment_pk(conn, ws_id, experiment_id)
            if stage == DELETED and conn.scalar(select(EXP.c.is_default).where(EXP.c.id == pk)):
                raise UsageError("Cannot delete the default experiment '0'.")
            ts = now_ms()
            conn.execute(
                update(EXP).where(EXP.c.id == pk).values(lifecycle_stage=stage, last_update_time=ts)
            )
            conn.execute(
                update(RUN)
                .where(RUN.c.experiment_id == pk)
                .values(lifecycle_stage=stage, deleted_time=ts if stage == DELETED else None)
            )

    def set_experiment_tag(self, workspace: str, experiment_id: str, key: str, value: str) -> None:
        ws_id = self.workspace_id(workspace)
        with self._write() as conn:
            pk = self._experiment_pk(conn, ws_id, experiment_id)
            stmt = self._insert(EXP_TAG).values(experiment_id=pk, key=key, value=value)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[EXP_TAG.c.experiment_id, EXP_TAG.c.key],
                    set_={"value": stmt.excluded.value},
                )
            )

    def delete_experiment_tag(self, workspace: str, experiment_id: str, key: str) -> None:
        ws_id = self.workspace_id(workspace)
        with self._write() as conn:
            pk = self._experiment_pk(conn, ws_id, experiment_id)
            conn.execute(delete(EXP_TAG).where(EXP_TAG.c.experiment_id == pk, EXP_TAG.c.key == key))

    def _experiments(self, conn: Connection, stmt: Select[Any]) -> list[dict[str, Any]]:
        rows = conn.execute(stmt).mappings().all()
        tags: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [r["id"] for r in rows]
            for exp_id, key, value in conn.execute(
                select(EXP_TAG.c.experiment_id, EXP_TAG.c.key, EXP_TAG.c.value).where(
                    EXP_TAG.c.experiment_id.in_(ids)
                )
            ):
                tags.setdefault(exp_id, []).append({"key": key, "value": value})
        return [
            {
                "experiment_id": "0" if r["is_default"] else str(r["id"]),
                "name": r["name"],
                "artifact_location": r["artifact_location"],
                "lifecycle_stage": r["lifecycle_stage"],
                "creation_time": r["creation_time"],
                "last_update_time": r["last_update_time"],
                "tags": tags.get(r["id"], []),
            }
            for r in rows
        ]

    # Runs -------------------------------------------------------------------------
    def create_run(
        self,
        workspace: str,
        experiment_id: str,
        run_id: str | None = None,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: dict[str, str] | None = None,
        user_id: str | None = None,
    ) -> dict[str, Any]:
        tags = dict(tags or {})
        ws_id = self.workspace_id(workspace)
        run_id = run_id or uuid.uuid4().hex
        run_name = run_name or tags.get(RUN_NAME_TAG) or _random_name()
        tags[RUN_NAME_TAG] = run_name
        try:
            with self._write() as conn:
                pk = self._experiment_pk(conn, ws_id, experiment_id)
                stage = conn.scalar(select(EXP.c.lifecycle_stage).where(EXP.c.id == pk))
                if stage != ACTIVE:
                    raise UsageError(
                        f"The experiment {experiment_id} must be in the 'active' state."
                    )
                wire_exp = str(experiment_id) if str(experiment_id) == "0" else str(pk)
                conn.execute(
                    RUN.insert().values(
                        run_uuid=run_id,
                        experiment_id=pk,
                        name=run_name,
                        status="RUNNING",
                        start_time=start_time if start_time is not None else now_ms(),
                        end_time=None,
                        lifecycle_stage=ACTIVE,
                        artifact_uri=f"mlflow-artifacts:/{wire_exp}/{run_id}/artifacts",
                        user_id=user_id or "",
                        deleted_time=None,
                    )
                )
                conn.execute(
                    TAG.insert(),
                    [{"run_uuid": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
        except IntegrityError as exc:
            raise ConflictError(f"run {run_id!r} already exists") from exc
        return self.get_run(run_id, workspace)

    def get_run(self, run_id: str, workspace: str | None = None) -> dict[str, Any]:
        with self._read() as conn:
            runs = self._runs(conn, _run_query().where(RUN.c.run_uuid == run_id), workspace)
        if not runs:
            raise NotFoundError(f"Run with id={run_id} not found")
        return runs[0]

    def update_run(
        self,
        run_id: str,
        status: str | None = None,
        end_time: int | None = None,
        run_name: str | None = None,
        workspace: str | None = None,
    ) -> dict[str, Any]:
        if status is not None and status not in RUN_STATUSES:
            raise UsageError(f"invalid run status {status!r}; allowed: {', '.join(RUN_STATUSES)}")
        with self._write() as conn:
            self._active_run(conn, run_id, workspace)
            values: dict[str, Any] = {}
            if status is not None:
                values["status"] = status
            if end_time is not None:
                values["end_time"] = end_time
            if run_name:
                values["name"] = run_name
                self._upsert_tags(conn, run_id, {RUN_NAME_TAG: run_name})
            if values:
                conn.execute(update(RUN).where(RUN.c.run_uuid == run_id).values(**values))
        return self.get_run(run_id, workspace)["info"]

    def set_terminated(self, run_id: str, status: str, end_time: int | None = None) -> None:
        """End a run (the job integration calls this when a job settles)."""
        self.update_run(run_id, status=status, end_time=end_time or now_ms())

    def set_run_lifecycle(self, run_id: str, stage: str, workspace: str | None = None) -> None:
        with self._write() as conn:
            self._run_ref(conn, run_id, workspace)
            conn.execute(
                update(RUN)
                .where(RUN.c.run_uuid == run_id)
                .values(lifecycle_stage=stage, deleted_time=now_ms() if stage == DELETED else None)
            )

    def _run_ref(
        self, conn: Connection, run_id: str, workspace: str | None, lock: _Lock = ""
    ) -> tuple[str, int]:
        row = conn.execute(
            _RUN_REF[workspace is not None, lock], {"run": run_id, "ws": workspace}
        ).first()
        if row is None:
            raise NotFoundError(f"Run with id={run_id} not found")
        return str(row[0]), int(row[1])

    def _active_run(
        self, conn: Connection, run_id: str, workspace: str | None, lock: _Lock = "share"
    ) -> None:
        """Checks the run takes writes, and holds it until commit: metric points have no
        foreign key (one check per batch instead of one per point), so this key-share lock
        on PostgreSQL is what keeps the run from being deleted under them; ``"exclusive"``
        also keeps out every other exclusive holder. SQLite's write transaction (BEGIN
        IMMEDIATE) already excludes every other writer."""
        _require_active(run_id, self._run_ref(conn, run_id, workspace, lock)[0])

    # Params, tags, metrics --------------------------------------------------------
    def log_params(self, run_id: str, params: dict[str, str], workspace: str | None = None) -> None:
        self.log_batch(run_id, params=params, workspace=workspace)

    def set_tag(self, run_id: str, key: str, value: str, workspace: str | None = None) -> None:
        self.log_batch(run_id, tags={key: value}, workspace=workspace)

    def record_logged_model(
        self, run_id: str, model: dict[str, Any], workspace: str | None = None
    ) -> None:
        """Append a model's metadata to the run's ``mlflow.log-model.history`` tag (a JSON
        list), as MLflow's store does for ``runs/log-model``; read and written in one write
        transaction that holds the run (SQLite's write lock; a row lock on PostgreSQL, where
        two calls at once read the same history and the later write dropped an entry)."""
        with self._write() as conn:
            self._active_run(conn, run_id, workspace, lock="exclusive")  # one log-model at a time
            current = conn.scalar(
                select(TAG.c.value).where(TAG.c.run_uuid == run_id, TAG.c.key == LOGGED_MODELS_TAG)
            )
            history = json.loads(current) if current else []
            history.append(model)
            self._upsert_tags(conn, run_id, {LOGGED_MODELS_TAG: json.dumps(history)})

    def delete_tag(self, run_id: str, key: str, workspace: str | None = None) -> None:
        with self._write() as conn:
            self._active_run(conn, run_id, workspace)
            result = conn.execute(delete(TAG).where(TAG.c.run_uuid == run_id, TAG.c.key == key))
            if not result.rowcount:
                raise NotFoundError(f"No tag with name: {key} in run with id {run_id}")

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[dict[str, Any]] = (),
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        workspace: str | None = None,
    ) -> None:
        """Metrics (``key, value, timestamp, step``), params and tags in ONE transaction."""
        points = [_metric_point(run_id, m) for m in metrics]
        params = {k: _param_value(k, v) for k, v in (params or {}).items()}
        if (
            not self._sqlite
            and not self._async_commit
            and not params
            and not tags
            and points
            and not any(m.get("model_id") for m in metrics)
        ):
            if len(points) < _COPY_THRESHOLD:
                self._log_points_at_once(run_id, points, workspace)
            else:
                self._log_points_by_copy(run_id, points, workspace)
            return
        with self._write() as conn:
            if self._async_commit:
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            self._active_run(conn, run_id, workspace)
            if params:
                self._insert_params(conn, run_id, params)
            if tags:
                self._upsert_tags(conn, run_id, tags)
                if tags.get(RUN_NAME_TAG):
                    conn.execute(
                        update(RUN).where(RUN.c.run_uuid == run_id).values(name=tags[RUN_NAME_TAG])
                    )
            if points:
                self._insert_metrics(conn, points)
                self._upsert_latest(conn, points)
                linked = [_model_metric_row(run_id, m) for m in metrics if m.get("model_id")]
                if linked:
                    self._insert_model_metrics(conn, linked)

    def _insert_model_metrics(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Points logged with a ``model_id`` are also the LoggedModel's metrics (MLflow 3)."""
        wanted = {r["model_id"] for r in rows}
        found = set(
            conn.scalars(select(MODEL.c.model_id).where(MODEL.c.model_id.in_(wanted))).all()
        )
        if wanted - found:
            missing = sorted(wanted - found)[0]
            raise NotFoundError(f"Logged model with ID '{missing}' not found.")
        conn.execute(MODEL_METRIC.insert(), rows)

    def _insert_metrics(self, conn: Connection, points: list[_Point]) -> None:
        """Metric points in bulk: a raw executemany on SQLite; COPY on PostgreSQL, where an
        executemany pays for every page of rows and COPY streams them in one go."""
        if not self._sqlite and len(points) < _COPY_THRESHOLD:
            conn.execute(METRIC.insert(), [_point_dict(p) for p in points])
            return
        # The raw DBAPI cursor, in this same transaction: SQLAlchemy's per-row parameter
        # processing costs more than the database's own insert of the row.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if self._sqlite:
                cursor.executemany(_INSERT_METRICS_SQLITE, points)
            else:
                _copy_points(cursor, points)
        finally:
            cursor.close()

    def _insert_params(self, conn: Connection, run_id: str, params: dict[str, str]) -> None:
        conn.execute(
            self._insert(PARAM).on_conflict_do_nothing(),
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(params.items())],
        )
        stored = dict(
            conn.execute(
                select(PARAM.c.key, PARAM.c.value).where(
                    PARAM.c.run_uuid == run_id, PARAM.c.key.in_(list(params))
                )
            ).all()
        )
        changed = [
            {"key": k, "old_value": stored[k], "new_value": v}
            for k, v in params.items()
            if stored.get(k) != v
        ]
        if changed:
            raise UsageError(
                "Changing param values is not allowed. Params were already logged="
                f"'{changed}' for run ID='{run_id}'."
            )

    def _upsert_tags(self, conn: Connection, run_id: str, tags: dict[str, str]) -> None:
        stmt = self._insert(TAG)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[TAG.c.run_uuid, TAG.c.key], set_={"value": stmt.excluded.value}
            ),
            # in key order, as the latest values (see _latest): no deadlock between writers
            [{"run_uuid": run_id, "key": k, "value": v} for k, v in sorted(tags.items())],
        )

    def _upsert_latest(self, conn: Connection, points: list[_Point]) -> None:
        # executemany of one statement, built once: multi-VALUES inserts are never cached.
        conn.execute(self._latest_upsert(), [_point_dict(p) for p in _latest(points)])

    def _log_points_at_once(self, run_id: str, points: list[_Point], workspace: str | None) -> None:
        """A few metric points on PostgreSQL (a log_metric, a small log_batch) in ONE
        statement, committed as it runs: the run check, its key-share lock, the points and
        the latest values. The general path takes five round trips (BEGIN, check, insert,
        upsert, COMMIT) and each was ≈0.45 ms from a worker thread, most of a call's time."""
        latest = _latest(points)
        args = {
            "run": run_id,
            "ws": workspace,
            **_arrays("", points),
            **_arrays("latest_", latest),
        }
        with self._pooled_pg() as pg:
            pg.autocommit = True
            try:
                _require_written(run_id, pg.execute(_PG_POINTS[workspace is not None], args))
            finally:
                if not pg.closed:  # a lost one is closed: the pool's reset then discards it
                    pg.autocommit = False  # as the pool lends it

    def _log_points_by_copy(self, run_id: str, points: list[_Point], workspace: str | None) -> None:
        """A metrics-only batch of many points on PostgreSQL in three round trips: BEGIN with
        one statement that checks and locks the run and upserts the latest values (sent
        together, pipelined), the COPY of the points, COMMIT. The general path takes six."""
        latest = _latest(points)
        args = {"run": run_id, "ws": workspace, **_arrays("latest_", latest)}
        with self._pooled_pg() as pg:  # the pool's reset rolls back what did not commit
            with pg.pipeline():
                checked = pg.execute(_PG_LATEST[workspace is not None], args)
            _require_written(run_id, checked)
            with pg.cursor() as cursor:
                _copy_points(cursor, points)
            pg.commit()

    @contextmanager
    def _pooled_pg(self) -> Iterator[Any]:
        """The pool's psycopg connection itself, given back (and reset) after: a SQLAlchemy
        Connection, with its isolation-level switch and reset, was a third of a log_metric's
        time in the server (measured)."""
        pooled = self.engine.raw_connection()
        try:
            yield pooled.driver_connection
        finally:
            pooled.close()

    def _latest_upsert(self) -> Any:
        if self._latest_stmt is None:
            self._latest_stmt = _keep_newest(self._insert(LATEST))
        return self._latest_stmt

    def latest_metrics(self, run_id: str) -> dict[str, float]:
        with self._read() as conn:
            rows = conn.execute(
                select(LATEST.c.key, LATEST.c.value, LATEST.c.is_nan).where(
                    LATEST.c.run_uuid == run_id
                )
            ).all()
        return {k: (math.nan if nan else v) for k, v, nan in rows}

    def params(self, run_id: str) -> dict[str, str]:
        with self._read() as conn:
            rows = conn.execute(
                select(PARAM.c.key, PARAM.c.value).where(PARAM.c.run_uuid == run_id)
            ).all()
        return {k: v for k, v in rows}

    def metric_history(
        self, run_id: str, key: str, workspace: str | None = None
    ) -> list[tuple[float, int, int, bool]]:
        """``(value, timestamp, step, is_nan)`` by step, then timestamp, then value (MLflow's
        own last tie-break), in one indexed query."""
        return self.metric_history_page(run_id, key, workspace)[0]

    def metric_history_page(
        self,
        run_id: str,
        key: str,
        workspace: str | None = None,
        max_results: int | None = None,
        page_token: str | None = None,
    ) -> tuple[list[tuple[float, int, int, bool]], str | None]:
        """One page of :meth:`metric_history` and the token of the next (None at the end);
        every point when ``max_results`` is None, as MLflow's get-history does."""
        if max_results is not None and max_results < 1:
            raise UsageError(
                f"Invalid value {max_results} for parameter 'max_results' supplied. "
                "It must be a positive integer."
            )
        offset = _decode_token(page_token)
        with self._read() as conn:
            self._run_ref(conn, run_id, workspace)
            stmt = (
                select(METRIC.c.value, METRIC.c.timestamp, METRIC.c.step, METRIC.c.is_nan)
                .where(METRIC.c.run_uuid == run_id, METRIC.c.key == key)
                # A total order, so pages are stable: rows alike in all four are identical.
                .order_by(METRIC.c.step, METRIC.c.timestamp, METRIC.c.value, METRIC.c.is_nan)
            )
            if offset:
                stmt = stmt.offset(offset)
            if max_results is not None:
                stmt = stmt.limit(max_results + 1)
            rows = self._raw_rows(conn, stmt)
        if max_results is not None and len(rows) > max_results:
            return rows[:max_results], _encode_token(offset + max_results)
        return rows, None

    def _of_runs_statements(self) -> dict[str, _RunsQuery]:
        if self._of_runs is None:
            dialect = self.engine.dialect
            self._of_runs = {name: _RunsQuery(stmt, dialect) for name, stmt in _OF_RUNS.items()}
        return self._of_runs

    @staticmethod
    def _raw_rows(conn: Connection, stmt: Select[Any]) -> list[Any]:
        """Rows as plain tuples through the DBAPI cursor: SQLAlchemy's row processing costs
        more than the query for a long metric history."""
        compiled = stmt.compile(dialect=conn.dialect)
        bound = compiled.construct_params()
        args: Any = (
            [bound[name] for name in compiled.positiontup or ()] if compiled.positional else bound
        )
        return _fetch_all(conn, str(compiled), args)

    # Inputs and outputs -----------------------------------------------------------
    def log_inputs(
        self,
        run_id: str,
        items: list[tuple[str, str, dict[str, Any]]],
        workspace: str | None = None,
    ) -> None:
        """``(kind, digest, payload)`` rows; a repeated (kind, digest) is logged once."""
        with self._write() as conn:
            self._active_run(conn, run_id, workspace)
            have = set(
                conn.execute(
                    select(INPUT.c.kind, INPUT.c.digest).where(INPUT.c.run_uuid == run_id)
                ).all()
            )
            fresh = [
                {"run_uuid": run_id, "kind": k, "digest": d, "payload": p, **_dataset_columns(k, p)}
                for k, d, p in items
                if (k, d) not in have
            ]
            if fresh:
                conn.execute(INPUT.insert(), fresh)

    # Search -----------------------------------------------------------------------
    def search_runs(
        self,
        workspace: str,
        experiment_ids: Iterable[str],
        filter: str | list[Clause] | None = None,
        order_by: list[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view_type: str = "ACTIVE_ONLY",
    ) -> tuple[list[dict[str, Any]], str | None]:
        clauses = parse_filter(filter) if filter is None or isinstance(filter, str) else filter
        orders = parse_order_by(order_by)
        ws_id = self.workspace_id(workspace)
        offset, limit = _decode_token(page_token), _limit(max_results)
        with self._read() as conn:
            pks = [self._experiment_pk(conn, ws_id, e) for e in experiment_ids]
            stmt = _run_query().where(
                RUN.c.experiment_id.in_(pks), RUN.c.lifecycle_stage.in_(_view(view_type))
            )
            for clause in clauses:
                stmt = self._filtered(stmt, clause)
            stmt = stmt.order_by(*self._run_orders(orders))
            runs = self._runs(conn, stmt.offset(offset).limit(limit + 1), None)
        token = _encode_token(offset + limit) if len(runs) > limit else None
        return runs[:limit], token

    def _filtered(self, stmt: Select[Any], clause: Clause) -> Select[Any]:
        """``stmt`` keeping the runs ``clause`` holds for. A run has at most one latest value,
        param or tag per key, so those are joins, not ``EXISTS``: the database may then
        start from the filter's own index (SQLite's planner never does from an ``EXISTS``:
        it read all 10,000 runs to find the 500 with an accuracy over 0.9, 11 ms; 3 ms
        from the latest values' (key, value) index, measured)."""
        if clause.entity == "attribute":
            return stmt.where(self._compare(RUN.c[_run_column(clause.key)], clause))
        if clause.entity == "dataset":  # any of the run's dataset inputs matches
            column = INPUT.c[f"dataset_{clause.key}"]
            return stmt.where(
                exists(
                    select(INPUT.c.run_uuid).where(
                        INPUT.c.run_uuid == RUN.c.run_uuid,
                        INPUT.c.kind == "dataset",
                        column.is_not(None),
                        self._compare(column, clause),
                    )
                )
            )
        table = {"metric": LATEST, "param": PARAM, "tag": TAG}[clause.entity].alias()
        match = [
            table.c.run_uuid == RUN.c.run_uuid,
            table.c.key == clause.key,
            self._compare(table.c.value, clause),
        ]
        if clause.entity == "metric":
            match.append(table.c.is_nan == false())
        return stmt.join(table, and_(*match))

    def _compare(self, column: Any, clause: Clause) -> ColumnElement[bool]:
        op, value = clause.op, clause.value
        if op == "IN":
            return column.in_(list(cast(tuple[str, ...], value)))
        if op == "NOT IN":
            return column.not_in(list(cast(tuple[str, ...], value)))
        if op == "LIKE":
            if self._sqlite:  # SQLite's LIKE ignores case; GLOB does not
                return column.op("GLOB")(_like_to_glob(str(value)))
            return column.like(value)
        if op == "ILIKE":
            return column.ilike(value)
        ops = {
            "=": column.__eq__,
            "!=": column.__ne__,
            ">": column.__gt__,
            ">=": column.__ge__,
            "<": column.__lt__,
            "<=": column.__le__,
        }
        return ops[op](value)

    def _run_orders(self, orders: list[OrderBy]) -> list[Any]:
        result: list[Any] = []
        for order in orders:
            if order.entity == "dataset":
                raise UsageError("runs cannot be ordered by datasets")
            if order.entity == "attribute":
                column: Any = RUN.c[_run_column(order.key)]
            else:
                table = {"metric": LATEST, "param": PARAM, "tag": TAG}[order.entity]
                column = (
                    select(table.c.value)
                    .where(table.c.run_uuid == RUN.c.run_uuid, table.c.key == order.key)
                    .scalar_subquery()
                )
            result.append(case((column.is_(None), 1), else_=0))  # missing values last
            result.append(column.asc() if order.ascending else column.desc())
        result += [RUN.c.start_time.desc(), RUN.c.run_uuid]
        return result

    def _runs(
        self, conn: Connection, stmt: Select[Any], workspace: str | None
    ) -> list[dict[str, Any]]:
        if workspace is not None:
            stmt = stmt.join(WS, WS.c.id == EXP.c.workspace_id).where(WS.c.name == workspace)
        rows = conn.execute(stmt).mappings().all()
        if not rows:
            return []
        ids = [r["run_uuid"] for r in rows]
        params: dict[str, list[dict[str, Any]]] = {}
        tags: dict[str, list[dict[str, Any]]] = {}
        metrics: dict[str, list[dict[str, Any]]] = {}
        inputs: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        of_runs = self._of_runs_statements()
        for run_id, key, value in of_runs["params"].rows(conn, ids):
            params.setdefault(run_id, []).append({"key": key, "value": value})
        for run_id, key, value in of_runs["tags"].rows(conn, ids):
            tags.setdefault(run_id, []).append({"key": key, "value": value})
        for run_id, key, value, ts, step, nan in of_runs["metrics"].rows(conn, ids):
            metrics.setdefault(run_id, []).append(
                {"key": key, "value": math.nan if nan else value, "timestamp": ts, "step": step}
            )
        for run_id, kind, payload in of_runs["inputs"].rows(conn, ids):
            if isinstance(payload, str):  # SQLite's JSON column, read without SQLAlchemy
                payload = json.loads(payload)
            inputs.setdefault(run_id, []).append((kind, payload))
        return [_run_dict(r, params, tags, metrics, inputs) for r in rows]


# What a run's answer holds besides the run row: each selected for a list of runs by _RunsQuery.
_OF_RUNS: dict[str, Select[Any]] = {
    "params": select(PARAM.c.run_uuid, PARAM.c.key, PARAM.c.value),
    "tags": select(TAG.c.run_uuid, TAG.c.key, TAG.c.value),
    "metrics": select(
        LATEST.c.run_uuid,
        LATEST.c.key,
        LATEST.c.value,
        LATEST.c.timestamp,
        LATEST.c.step,
        LATEST.c.is_nan,
    ),
    "inputs": select(INPUT.c.run_uuid, INPUT.c.kind, INPUT.c.payload).order_by(INPUT.c.id),
}


class _RunsQuery:
    """One of :data:`_OF_RUNS` for a list of runs, compiled once for the store's database:
    the run ids go in as ONE parameter (a PostgreSQL array; a JSON list read by SQLite's
    ``json_each``) and the rows come back through the DBAPI cursor. An ``IN`` with one
    placeholder per run was rendered, parsed and bound anew for every search: 60% of a
    500-run search on PostgreSQL (measured)."""

    def __init__(self, stmt: Select[Any], dialect: Any) -> None:
        run_id = stmt.selected_columns[0]
        self._sqlite = dialect.name == "sqlite"
        if self._sqlite:
            listed: Any = select(literal_column("value")).select_from(
                func.json_each(bindparam("ids"))
            )
            stmt = stmt.where(run_id.in_(listed))
        else:
            stmt = stmt.where(run_id == any_(bindparam("ids", type_=postgresql.ARRAY(String))))
        self._sql = str(stmt.compile(dialect=dialect))

    def rows(self, conn: Connection, ids: list[str]) -> list[Any]:
        return _fetch_all(conn, self._sql, (json.dumps(ids),) if self._sqlite else {"ids": ids})


def _fetch_all(conn: Connection, sql: str, args: Any) -> list[Any]:
    """Rows as plain tuples from the DBAPI cursor, in ``conn``'s transaction."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _run_dict(
    r: Any,
    params: dict[str, list[dict[str, Any]]],
    tags: dict[str, list[dict[str, Any]]],
    metrics: dict[str, list[dict[str, Any]]],
    inputs: dict[str, list[tuple[str, dict[str, Any]]]],
) -> dict[str, Any]:
    run_id = r["run_uuid"]
    io = inputs.get(run_id, [])
    return {
        "info": {
            "run_id": run_id,
            "run_uuid": run_id,
            "run_name": r["name"] or "",
            "experiment_id": "0" if r["is_default"] else str(r["experiment_id"]),
            "user_id": r["user_id"] or "",
            "status": r["status"],
            "start_time": r["start_time"],
            "end_time": r["end_time"],
            "artifact_uri": r["artifact_uri"],
            "lifecycle_stage": r["lifecycle_stage"],
        },
        "data": {
            "metrics": metrics.get(run_id, []),
            "params": params.get(run_id, []),
            "tags": tags.get(run_id, []),
        },
        "inputs": {
            "dataset_inputs": [p for k, p in io if k == "dataset"],
            "model_inputs": [p for k, p in io if k == "model"],
        },
        "outputs": {"model_outputs": [p for k, p in io if k == "model_output"]},
    }


# How a run check holds the run row until commit on PostgreSQL (SQLite compiles no locking
# clause): not at all; FOR KEY SHARE (writers of points, who only need it to stay); FOR NO KEY
# UPDATE (one at a time among themselves, still beside the key-share holders).
_Lock = Literal["", "share", "exclusive"]


def _run_ref_query(in_workspace: bool, lock: _Lock) -> Select[Any]:
    stmt = (
        select(RUN.c.lifecycle_stage, EXP.c.workspace_id)
        .join(EXP, EXP.c.id == RUN.c.experiment_id)
        .where(RUN.c.run_uuid == bindparam("run"))
    )
    if in_workspace:
        stmt = stmt.join(WS, WS.c.id == EXP.c.workspace_id).where(WS.c.name == bindparam("ws"))
    if lock:
        stmt = stmt.with_for_update(read=lock == "share", key_share=True, of=RUN)
    return stmt


# Built once: every write checks its run, and building the statement cost more than running it.
_RUN_REF = {
    (in_ws, lock): _run_ref_query(in_ws, lock)
    for in_ws in (False, True)
    for lock in get_args(_Lock)
}


def _run_query() -> Select[Any]:
    return select(RUN, EXP.c.is_default).join(EXP, EXP.c.id == RUN.c.experiment_id)


def _default_id_query(ws_id: int) -> Select[Any]:
    return select(EXP.c.id).where(EXP.c.workspace_id == ws_id, EXP.c.is_default.is_(True))


# One metric point as stored: (run_uuid, key, value, timestamp, step, is_nan). A tuple, not a
# dict: a log-batch builds a thousand of them, and they go to COPY/executemany as they are.
_Point = tuple[str, str, float, int, int, bool]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1  # what a timestamp and a step are stored as
_POINT_COLUMNS = ("run_uuid", "key", "value", "timestamp", "step", "is_nan")
# PostgreSQL's type of each, for COPY's binary rows and the unnest arrays.
_POINT_TYPES = ("varchar", "varchar", "float8", "int8", "int8", "bool")


def _metric_point(run_id: str, metric: dict[str, Any]) -> _Point:
    key = metric.get("key")
    if not key or not isinstance(key, str):
        raise UsageError(f"a metric needs a key; got {metric!r}")
    try:
        value = float(metric["value"])
        timestamp = int(metric.get("timestamp") or now_ms())
        step = int(metric.get("step") or 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"invalid metric {key!r}: {exc}") from None
    for name, number in (("timestamp", timestamp), ("step", step)):
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise UsageError(
                f"invalid metric {key!r}: {name} {number} is outside the 64-bit integer range"
            )
    if value != value:  # NaN is stored as 0.0 with is_nan set, as MLflow's schema does
        return (run_id, key, 0.0, timestamp, step, True)
    return (run_id, key, value, timestamp, step, False)


def _copy_points(cursor: Any, points: list[_Point]) -> None:
    """The points into ``tracking_metrics`` by one COPY on a psycopg cursor."""
    with cursor.copy(_COPY_METRICS) as copy:
        copy.set_types(list(_POINT_TYPES))
        for point in points:
            copy.write_row(point)


def _point_dict(point: _Point) -> dict[str, Any]:
    return dict(zip(_POINT_COLUMNS, point, strict=True))


def _model_metric_row(run_id: str, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        **_point_dict(_metric_point(run_id, metric)),
        "model_id": str(metric["model_id"]),
        "dataset_name": metric.get("dataset_name") or None,
        "dataset_digest": metric.get("dataset_digest") or None,
    }


def _dataset_columns(kind: str, payload: dict[str, Any]) -> dict[str, str | None]:
    if kind != "dataset":
        return {"dataset_name": None, "dataset_digest": None, "dataset_context": None}
    dataset = payload.get("dataset") or {}
    context = next(
        (t.get("value") for t in payload.get("tags") or [] if t.get("key") == DATASET_CONTEXT_TAG),
        None,
    )
    return {
        "dataset_name": dataset.get("name"),
        "dataset_digest": dataset.get("digest"),
        "dataset_context": context,
    }


def _param_value(key: str, value: Any) -> str:
    if not key:
        raise UsageError("a param needs a key")
    text = "" if value is None else str(value)
    if len(text) > MAX_PARAM_VALUE:
        raise UsageError(
            f"Param value for {key!r} is {len(text)} characters; the limit is {MAX_PARAM_VALUE}"
        )
    return text


def _order(point: _Point) -> tuple[int, int, float]:
    return (point[4], point[3], point[2])


def _latest(points: list[_Point]) -> list[_Point]:
    """The newest point of each key (by step, then timestamp, then value, as MLflow), in
    key order: every writer then locks a run's latest values in the same order, so two
    batches naming the same keys in different orders cannot deadlock on PostgreSQL."""
    latest: dict[str, _Point] = {}
    for point in points:
        seen = latest.get(point[1])
        if seen is None or _order(point) > _order(seen):
            latest[point[1]] = point
    return [latest[key] for key in sorted(latest)]


def _arrays(prefix: str, points: list[_Point]) -> dict[str, list[Any]]:
    """Points as one array per column, for PostgreSQL's ``unnest``."""
    return {
        f"{prefix}{name}": [p[i] for p in points]
        for i, name in enumerate(_POINT_COLUMNS)
        if name != "run_uuid"
    }


def _require_written(run_id: str, checked: Any) -> None:
    """After a one-statement write (:func:`_pg_points_sql`): it wrote nothing for a missing or
    inactive run, and its one row (the run's stage) says which."""
    row = checked.fetchone()
    if row is None:
        raise NotFoundError(f"Run with id={run_id} not found")
    _require_active(run_id, row[0])


def _require_active(run_id: str, stage: str) -> None:
    if stage != ACTIVE:
        raise UsageError(
            f"The run {run_id} must be in the 'active' state. Current state is {stage}."
        )


def _keep_newest(stmt: Any) -> Any:
    """An insert into ``tracking_latest_metrics`` that keeps, per (run, key), the newest
    value by MLflow's order (step, then timestamp, then value): :func:`_order` in SQL."""
    new = stmt.excluded
    newer = or_(
        new.step > LATEST.c.step,
        and_(new.step == LATEST.c.step, new.timestamp > LATEST.c.timestamp),
        and_(
            new.step == LATEST.c.step,
            new.timestamp == LATEST.c.timestamp,
            new.value > LATEST.c.value,
        ),
    )
    return stmt.on_conflict_do_update(
        index_elements=[LATEST.c.run_uuid, LATEST.c.key],
        set_={
            "value": new.value,
            "timestamp": new.timestamp,
            "step": new.step,
            "is_nan": new.is_nan,
        },
        where=newer,
    )


def _pg_points_sql(in_workspace: bool, with_points: bool = True) -> str:
    """One statement: the general path's run check and lock (``_RUN_REF``), the points (or
    not: a COPY sends them), and its latest-value upsert (``_keep_newest``), fed from arrays
    through ``unnest``."""
    columns = list(_POINT_COLUMNS)

    def from_arrays(prefix: str) -> Any:
        arrays = ", ".join(
            f"CAST(:{prefix}{name} AS {kind}[])"
            for name, kind in zip(columns[1:], _POINT_TYPES[1:], strict=True)
        )
        points = text(f"live, unnest({arrays}) AS p({', '.join(columns[1:])})")
        return select(
            bindparam("run", type_=String), *(literal_column(f"p.{c}") for c in columns[1:])
        ).select_from(points)

    def sql(stmt: Any) -> str:
        return str(stmt.compile(dialect=_PG_DIALECT))

    insert_points = postgresql.insert(METRIC).from_select(columns, from_arrays(""))
    upsert_latest = _keep_newest(
        postgresql.insert(LATEST).from_select(columns, from_arrays("latest_"))
    )
    return (
        f"WITH run AS ({sql(_RUN_REF[in_workspace, 'share'])}),"
        f" live AS (SELECT 1 FROM run WHERE lifecycle_stage = '{ACTIVE}'),"
        + (f" points AS ({sql(insert_points)})," if with_points else "")
        + f" latest AS ({sql(upsert_latest)})"
        " SELECT lifecycle_stage FROM run"
    )


_PG_DIALECT = psycopg_dialect()
# Built once, with and without the workspace check: see SqlTrackingStore._log_points_at_once.
_PG_POINTS = {flag: _pg_points_sql(flag) for flag in (False, True)}
# The same without the points, which follow by COPY: see SqlTrackingStore._log_points_by_copy.
_PG_LATEST = {flag: _pg_points_sql(flag, with_points=False) for flag in (False, True)}


def _view(view_type: str | None) -> tuple[str, ...]:
    stages = VIEW_TYPES.get(str(view_type or "ACTIVE_ONLY").upper())
    if stages is None:
        raise UsageError(f"invalid view type {view_type!r}; allowed: {', '.join(VIEW_TYPES)}")
    return stages


def _run_column(key: str) -> str:
    return {
        "run_id": "run_uuid",
        "run_name": "name",
        "created": "start_time",
        "creation_time": "start_time",
    }.get(key, key)


def _exp_column(key: str) -> str:
    return {"experiment_id": "id"}.get(key, key)


def _limit(max_results: int | None) -> int:
    limit = 1000 if max_results is None else int(max_results)
    if not 1 <= limit <= MAX_RESULTS:
        raise UsageError(f"max_results must be between 1 and {MAX_RESULTS}, got {limit}")
    return limit


def _encode_token(offset: int) -> str:
    import base64

    return base64.urlsafe_b64encode(f'{{"offset": {offset}}}'.encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    import base64

    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"invalid page token {token!r}") from exc
    if offset < 0:
        raise UsageError(f"invalid page token {token!r}")
    return offset


def _like_to_glob(pattern: str) -> str:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append("*")
        elif ch == "_":
            out.append("?")
        elif ch in "*?[":
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _random_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"
