"""Metric points without a foreign key to their run.

The key made PostgreSQL run a referential-integrity trigger (a key-share lock on the run)
for every point of a log-batch: half of a 1,000-point COPY's time, measured. The store now
locks the run once per batch instead (``SqlTrackingStore._active_run``), and deletes a
workspace's points itself (``SqlStore.delete_workspace``), which is all the key did.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _metrics_table(with_run_fk: bool) -> sa.Table:
    run_uuid = [sa.ForeignKey("tracking_runs.run_uuid", ondelete="CASCADE")] if with_run_fk else []
    return sa.Table(
        "tracking_metrics",
        sa.MetaData(),
        sa.Column("id", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_uuid", sa.String(255), *run_uuid, nullable=False),
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("is_nan", sa.Boolean(), nullable=False),
        sa.Index("ix_tracking_metrics_run_key_step", "run_uuid", "key", "step"),
    )


def _rebuild(with_run_fk: bool) -> None:
    """SQLite cannot drop or add a constraint in place: copy the table (batch mode)."""
    with op.batch_alter_table(
        "tracking_metrics", recreate="always", copy_from=_metrics_table(with_run_fk)
    ):
        pass


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_run_fk=False)
        return
    for fk in sa.inspect(op.get_bind()).get_foreign_keys("tracking_metrics"):
        op.drop_constraint(str(fk["name"]), "tracking_metrics", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(with_run_fk=True)
        return
    op.create_foreign_key(
        None, "tracking_metrics", "tracking_runs", ["run_uuid"], ["run_uuid"], ondelete="CASCADE"
    )
