"""Front ends: webhook deliveries, each claimed once.

Revision ID: 0004
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = ("ui",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(200), nullable=False),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "delivery_id", name="uq_ui_deliveries_source_delivery"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("ui_deliveries")
