"""Webhook deliveries become durable jobs: payload, answer, attempts, schedule and lease.

Revision ID: 0005
Revises: 0006 (the access tables came first; one line of ui revisions)
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ui_deliveries") as batch:
        batch.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("answer", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("run_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("worker", sa.String(120), nullable=True))
        batch.add_column(sa.Column("error", sa.String(500), nullable=True))
    op.create_index("ix_ui_deliveries_status_run_after", "ui_deliveries", ["status", "run_after"])
    op.create_index("ix_ui_deliveries_conversation", "ui_deliveries", ["conversation_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_ui_deliveries_conversation", "ui_deliveries")
    op.drop_index("ix_ui_deliveries_status_run_after", "ui_deliveries")
    with op.batch_alter_table("ui_deliveries") as batch:
        for column in ("error", "worker", "lease_until", "run_after", "attempts", "answer"):
            batch.drop_column(column)
        batch.drop_column("payload")
