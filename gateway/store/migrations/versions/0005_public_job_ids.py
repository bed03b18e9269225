"""the id a tenant knows a job by, unique per tenant

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite rebuilding ``jobs`` would cascade deletes to its items.
    op.add_column("jobs", sa.Column("public_id", sa.String(length=64), nullable=False, server_default=""))
    op.execute("UPDATE jobs SET public_id = id")
    op.create_index(op.f("ix_jobs_tenant_id_public_id"), "jobs", ["tenant_id", "public_id"], unique=True)


def downgrade() -> None:
    op.drop_index(op.f("ix_jobs_tenant_id_public_id"), table_name="jobs")
    op.drop_column("jobs", "public_id")
