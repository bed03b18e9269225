"""browser actions: a page keeps its actions' screenshots beside its own, by position

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("batch_screenshots", recreate="always") as batch:
        batch.add_column(sa.Column("position", sa.Integer(), server_default="0", nullable=False))
        batch.drop_constraint("pk_batch_screenshots", type_="primary")
        batch.create_primary_key("pk_batch_screenshots", ["batch_id", "input_index", "position"])


def downgrade() -> None:
    op.execute("DELETE FROM batch_screenshots WHERE position > 0")
    with op.batch_alter_table("batch_screenshots", recreate="always") as batch:
        batch.drop_constraint("pk_batch_screenshots", type_="primary")
        batch.create_primary_key("pk_batch_screenshots", ["batch_id", "input_index"])
        batch.drop_column("position")
