"""Tracking tables (MLflow-compatible experiments, runs, metrics, logged models).

They live on the same ``Base`` as the rest of Mill's tables, so ``Base.metadata`` holds
them once this module is imported. Times here are epoch *milliseconds* (BigInteger), the
unit MLflow's wire format uses, unlike the float seconds of Mill's own tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from mill.store.tables import Base

__all__ = [
    "ExperimentRow",
    "ExperimentTagRow",
    "LatestMetricRow",
    "LoggedModelMetricRow",
    "LoggedModelRow",
    "MetricRow",
    "ParamRow",
    "RunInputRow",
    "RunRow",
    "RunTagRow",
]

# A 64-bit key that still autoincrements on SQLite (only INTEGER PRIMARY KEY aliases rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class ExperimentRow(Base):
    __tablename__ = "tracking_experiments"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", name="uq_tracking_experiments_ws_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(500))
    # The workspace's "Default" experiment, which the MLflow wire calls "0".
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    artifact_location: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32))
    creation_time: Mapped[int] = mapped_column(BigInteger)
    last_update_time: Mapped[int] = mapped_column(BigInteger)


class ExperimentTagRow(Base):
    __tablename__ = "tracking_experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("tracking_experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "tracking_runs"
    __table_args__ = (Index("ix_tracking_runs_experiment_start", "experiment_id", "start_time"),)

    run_uuid: Mapped[str] = mapped_column(String(255), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("tracking_experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(20))
    artifact_uri: Mapped[str | None] = mapped_column(Text)
    user_id: Mapped[str | None] = mapped_column(String(255))
    deleted_time: Mapped[int | None] = mapped_column(BigInteger)


class ParamRow(Base):
    __tablename__ = "tracking_params"

    run_uuid: Mapped[str] = mapped_column(
        ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunTagRow(Base):
    __tablename__ = "tracking_tags"

    run_uuid: Mapped[str] = mapped_column(
        ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)


class MetricRow(Base):
    """Every logged metric point; read back by one indexed range scan per (run, key).

    No foreign key to the run (migration 0008): PostgreSQL would check it once per point,
    half of a log-batch's insert time; the store locks the run once per batch instead. No
    surrogate id either (0009): a sequence and a second index cost a fifth of the insert.
    The database has no primary key; the one below is only the ORM's, which needs one."""

    __tablename__ = "tracking_metrics"
    __table_args__ = (Index("ix_tracking_metrics_run_key_step", "run_uuid", "key", "step"),)
    __mapper_args__ = {"primary_key": ["run_uuid", "key", "step", "timestamp", "value"]}

    run_uuid: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean)


class LatestMetricRow(Base):
    """The latest point per (run, key): what search filters and sorts on."""

    __tablename__ = "tracking_latest_metrics"
    __table_args__ = (Index("ix_tracking_latest_metrics_key_value", "key", "value"),)

    run_uuid: Mapped[str] = mapped_column(
        ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean)


class RunInputRow(Base):
    """One dataset input of a run, kept as the JSON the client sent (dataset + tags)."""

    __tablename__ = "tracking_run_inputs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_uuid: Mapped[str] = mapped_column(
        ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # "dataset" | "model" | "model_output"
    digest: Mapped[str] = mapped_column(String(255))  # dedupes repeated logging
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A dataset's name, digest and context (its mlflow.data.context tag), out of the JSON so
    # that ``datasets.*`` search filters are plain column comparisons on both backends.
    dataset_name: Mapped[str | None] = mapped_column(String(500))
    dataset_digest: Mapped[str | None] = mapped_column(String(255))
    dataset_context: Mapped[str | None] = mapped_column(String(255))


class LoggedModelRow(Base):
    """An MLflow 3 LoggedModel; params and tags kept as JSON on the row (``metrics`` is unused:
    a model's metrics are rows of :class:`LoggedModelMetricRow`)."""

    __tablename__ = "tracking_logged_models"
    __table_args__ = (Index("ix_tracking_logged_models_experiment", "experiment_id"),)

    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("tracking_experiments.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(500))
    source_run_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    status_message: Mapped[str | None] = mapped_column(Text)
    model_type: Mapped[str | None] = mapped_column(String(255))
    artifact_location: Mapped[str] = mapped_column(Text)
    lifecycle_stage: Mapped[str] = mapped_column(String(32))
    creation_timestamp: Mapped[int] = mapped_column(BigInteger)
    last_updated_timestamp: Mapped[int] = mapped_column(BigInteger)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[list[Any]] = mapped_column(JSON, default=list)


class LoggedModelMetricRow(Base):
    """A metric point linked to a LoggedModel (logged with ``model_id``), with its dataset."""

    __tablename__ = "tracking_logged_model_metrics"
    __table_args__ = (Index("ix_tracking_logged_model_metrics_model_key", "model_id", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_id: Mapped[str] = mapped_column(
        ForeignKey("tracking_logged_models.model_id", ondelete="CASCADE")
    )
    run_uuid: Mapped[str | None] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(250))
    value: Mapped[float] = mapped_column(Float)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean)
    dataset_name: Mapped[str | None] = mapped_column(String(500))
    dataset_digest: Mapped[str | None] = mapped_column(String(255))
