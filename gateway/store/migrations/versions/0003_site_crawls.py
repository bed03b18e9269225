"""site crawls (batches of kind crawl), datasources, their crawls and pages

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs: SQLite rebuilding ``batches`` would cascade deletes to its pages.
    op.add_column("batches", sa.Column("kind", sa.String(length=10), nullable=False, server_default="urls"))
    op.add_column("batches", sa.Column("crawl", sa.JSON(), nullable=True))
    op.add_column("batch_pages", sa.Column("content_hash", sa.String(length=64), nullable=True))
    op.create_table(
        "datasources",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("api_key_id", sa.String(length=36), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("page_limit", sa.Integer(), nullable=False),
        sa.Column("include_paths", sa.JSON(), nullable=False),
        sa.Column("exclude_paths", sa.JSON(), nullable=False),
        sa.Column("crawl_interval_hours", sa.Float(), nullable=True),
        sa.Column("next_crawl_at", sa.DateTime(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_datasources_tenant_id_tenants")),
        sa.ForeignKeyConstraint(
            ["api_key_id"], ["api_keys.id"], name=op.f("fk_datasources_api_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasources")),
    )
    op.create_index(op.f("ix_datasources_tenant_id_created_at"), "datasources", ["tenant_id", "created_at"])
    op.create_index(op.f("ix_datasources_next_crawl_at"), "datasources", ["next_crawl_at"])
    op.create_table(
        "datasource_crawls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("datasource_id", sa.String(length=36), nullable=False),
        sa.Column("batch_id", sa.String(length=36), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("total_pages", sa.Integer(), nullable=True),
        sa.Column("completed_pages", sa.Integer(), nullable=False),
        sa.Column("new_pages", sa.Integer(), nullable=False),
        sa.Column("updated_pages", sa.Integer(), nullable=False),
        sa.Column("removed_pages", sa.Integer(), nullable=False),
        sa.Column("unchanged_pages", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["datasource_id"],
            ["datasources.id"],
            name=op.f("fk_datasource_crawls_datasource_id_datasources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_datasource_crawls_batch_id_batches"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasource_crawls")),
    )
    op.create_index(
        op.f("ix_datasource_crawls_datasource_id_created_at"),
        "datasource_crawls",
        ["datasource_id", "created_at"],
    )
    op.create_index(op.f("ix_datasource_crawls_status"), "datasource_crawls", ["status"])
    op.create_table(
        "datasource_pages",
        sa.Column("datasource_id", sa.String(length=36), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("change", sa.String(length=16), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("record", sa.Text(), nullable=True),
        sa.Column("crawl_id", sa.String(length=36), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("crawled_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["datasource_id"],
            ["datasources.id"],
            name=op.f("fk_datasource_pages_datasource_id_datasources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("datasource_id", "url", name=op.f("pk_datasource_pages")),
    )
    op.create_index(
        op.f("ix_datasource_pages_datasource_id_change"), "datasource_pages", ["datasource_id", "change"]
    )


def downgrade() -> None:
    op.drop_table("datasource_pages")
    op.drop_table("datasource_crawls")
    op.drop_table("datasources")
    with op.batch_alter_table("batch_pages") as batch:
        batch.drop_column("content_hash")
    with op.batch_alter_table("batches") as batch:
        batch.drop_column("crawl")
        batch.drop_column("kind")
