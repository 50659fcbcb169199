"""Website sources: each crawled site and each page's validators for incremental sync; a
document's URL (a web page's, a Markdown file's front-matter `url:`), so citations link to it.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("url", sa.String(2048), nullable=False, server_default=""))
    op.create_table(
        "web_sites",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("start_url", sa.String(2048), nullable=False, unique=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "web_pages",
        sa.Column("url", sa.String(2048), primary_key=True),
        sa.Column(
            "site_id",
            sa.Integer(),
            sa.ForeignKey("web_sites.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("etag", sa.String(512), nullable=False, server_default=""),
        sa.Column("last_modified", sa.String(64), nullable=False, server_default=""),
        sa.Column("links", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("indexed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_pages")
    op.drop_table("web_sites")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("url")
