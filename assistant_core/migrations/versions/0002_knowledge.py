"""Knowledge base: document kind and version, the knowledge base's version counter.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = ("knowledge",)
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("kb_version", sa.BigInteger(), nullable=False, server_default="0")
        )
    state = op.create_table(
        "knowledge_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.bulk_insert(state, [{"id": 1, "version": 0}])


def downgrade() -> None:
    op.drop_table("knowledge_state")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("kb_version")
        batch.drop_column("kind")
