"""webhook events: an index on their age, for the sweep of delivered and failed ones

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_webhook_events_created_at"), "webhook_events", ["created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_events_created_at"), table_name="webhook_events")
