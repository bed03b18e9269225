"""change tracking: each tenant's last scrape of a page under a tag

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
    op.create_table(
        "page_versions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.Column("scraped_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_page_versions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "tag", "url_hash", name=op.f("pk_page_versions")),
    )


def downgrade() -> None:
    op.drop_table("page_versions")
