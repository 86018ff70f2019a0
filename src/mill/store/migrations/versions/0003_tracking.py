"""Tracking: MLflow-compatible experiments, runs, params, tags, metrics, logged models.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _run_fk() -> sa.ForeignKey:
    return sa.ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE")


def _experiment_fk() -> sa.ForeignKey:
    return sa.ForeignKey("tracking_experiments.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "tracking_experiments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id",
            sa.Integer(),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("artifact_location", sa.Text(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_time", sa.BigInteger(), nullable=False),
        sa.Column("last_update_time", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("workspace_id", "name", name="uq_tracking_experiments_ws_name"),
    )
    op.create_table(
        "tracking_experiment_tags",
        sa.Column("experiment_id", sa.Integer(), _experiment_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
    )
    op.create_table(
        "tracking_runs",
        sa.Column("run_uuid", sa.String(255), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), _experiment_fk(), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(20), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=True),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("deleted_time", sa.BigInteger(), nullable=True),
    )
    op.create_index(
        "ix_tracking_runs_experiment_start", "tracking_runs", ["experiment_id", "start_time"]
    )
    op.create_table(
        "tracking_params",
        sa.Column("run_uuid", sa.String(255), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "tracking_tags",
        sa.Column("run_uuid", sa.String(255), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Text(), nullable=True),
    )
    op.create_table(
        "tracking_metrics",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(255), _run_fk(), nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_tracking_metrics_run_key_step", "tracking_metrics", ["run_uuid", "key", "step"]
    )
    op.create_table(
        "tracking_latest_metrics",
        sa.Column("run_uuid", sa.String(255), _run_fk(), primary_key=True),
        sa.Column("key", sa.String(250), primary_key=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
    )
    op.create_index(
        "ix_tracking_latest_metrics_key_value", "tracking_latest_metrics", ["key", "value"]
    )
    op.create_table(
        "tracking_run_inputs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(255), _run_fk(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
    )
    op.create_index("ix_tracking_run_inputs_run_uuid", "tracking_run_inputs", ["run_uuid"])
    op.create_table(
        "tracking_logged_models",
        sa.Column("model_id", sa.String(64), primary_key=True),
        sa.Column("experiment_id", sa.Integer(), _experiment_fk(), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("source_run_id", sa.String(255), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("model_type", sa.String(255), nullable=True),
        sa.Column("artifact_location", sa.Text(), nullable=False),
        sa.Column("lifecycle_stage", sa.String(32), nullable=False),
        sa.Column("creation_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
    )
    op.create_index(
        "ix_tracking_logged_models_experiment", "tracking_logged_models", ["experiment_id"]
    )


def downgrade() -> None:
    op.drop_table("tracking_logged_models")
    op.drop_table("tracking_run_inputs")
    op.drop_table("tracking_latest_metrics")
    op.drop_table("tracking_metrics")
    op.drop_table("tracking_tags")
    op.drop_table("tracking_params")
    op.drop_table("tracking_runs")
    op.drop_table("tracking_experiment_tags")
    op.drop_table("tracking_experiments")
