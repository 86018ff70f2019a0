"""Tracking: LoggedModel metrics, and run inputs' dataset name/digest/context as columns.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_CONTEXT_TAG = "mlflow.data.context"


def upgrade() -> None:
    op.create_table(
        "tracking_logged_model_metrics",
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "model_id",
            sa.String(64),
            sa.ForeignKey("tracking_logged_models.model_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("run_uuid", sa.String(255), nullable=True),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Column("dataset_name", sa.String(500), nullable=True),
        sa.Column("dataset_digest", sa.String(255), nullable=True),
    )
    op.create_index(
        "ix_tracking_logged_model_metrics_model_key",
        "tracking_logged_model_metrics",
        ["model_id", "key"],
    )
    with op.batch_alter_table("tracking_run_inputs") as batch:
        batch.add_column(sa.Column("dataset_name", sa.String(500), nullable=True))
        batch.add_column(sa.Column("dataset_digest", sa.String(255), nullable=True))
        batch.add_column(sa.Column("dataset_context", sa.String(255), nullable=True))
    _backfill_datasets()


def _backfill_datasets() -> None:
    inputs = sa.table(
        "tracking_run_inputs",
        sa.column("id", sa.Integer()),
        sa.column("kind", sa.String()),
        sa.column("payload", sa.JSON()),
        sa.column("dataset_name", sa.String()),
        sa.column("dataset_digest", sa.String()),
        sa.column("dataset_context", sa.String()),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(inputs.c.id, inputs.c.payload).where(inputs.c.kind == "dataset")
    ).all()
    for row_id, payload in rows:
        data: dict[str, Any] = json.loads(payload) if isinstance(payload, str) else payload or {}
        dataset = data.get("dataset") or {}
        context = next(
            (t.get("value") for t in data.get("tags") or [] if t.get("key") == _CONTEXT_TAG), None
        )
        conn.execute(
            sa.update(inputs)
            .where(inputs.c.id == row_id)
            .values(
                dataset_name=dataset.get("name"),
                dataset_digest=dataset.get("digest"),
                dataset_context=context,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("tracking_run_inputs") as batch:
        batch.drop_column("dataset_context")
        batch.drop_column("dataset_digest")
        batch.drop_column("dataset_name")
    op.drop_table("tracking_logged_model_metrics")
