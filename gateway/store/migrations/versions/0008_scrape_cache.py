"""one-page scrapes: the key a later scrape of the same page and options finds them by

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batches") as batch:
        batch.add_column(sa.Column("cache_key", sa.String(length=64), nullable=True))
    op.create_index(op.f("ix_batches_tenant_id_cache_key"), "batches", ["tenant_id", "cache_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_batches_tenant_id_cache_key"), table_name="batches")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("cache_key")
