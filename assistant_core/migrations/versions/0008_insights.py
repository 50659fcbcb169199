"""Insights: the rollup of purged conversations' counts; indexes for the report and for purging.

Revision ID: 0008
Revises: 0002, 0003, 0005, 0007 (a merge: one head)
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = ("0002", "0003", "0005", "0007")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "insights_rollup",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("channel", sa.String(32), primary_key=True),
        sa.Column("metric", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    # the report counts events of a few types in a time window; purging finds idle conversations
    op.create_index("ix_events_type_created_at", "events", ["type", "created_at"])
    op.create_index("ix_conversations_created_at", "conversations", ["created_at"])
    op.create_index("ix_conversations_updated_at", "conversations", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_updated_at", "conversations")
    op.drop_index("ix_conversations_created_at", "conversations")
    op.drop_index("ix_events_type_created_at", "events")
    op.drop_table("insights_rollup")
