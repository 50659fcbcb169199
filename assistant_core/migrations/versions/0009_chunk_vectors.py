"""Vectors stored with their chunks, and the embedding model that made them: a host whose index
is behind catches up from the database without embedding (issue 18).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("vector", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("knowledge_state") as batch:
        batch.add_column(
            sa.Column("embedding_model", sa.String(256), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("knowledge_state") as batch:
        batch.drop_column("embedding_model")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("vector")
