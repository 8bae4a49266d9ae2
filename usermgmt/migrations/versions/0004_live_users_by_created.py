"""live users by created_at: a partial index for the default listing

The default listing (not deleted, newest first) and every offset into it walked
``ix_users_created_at_id`` and visited the table row of each entry to test
``deleted_at``: a random heap read per skipped row. This index answers it from
the index alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 20:15:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LIVE = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(
            "ix_users_live_created_at_id",
            ["created_at", "id"],
            unique=False,
            postgresql_where=LIVE,
            sqlite_where=LIVE,
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index("ix_users_live_created_at_id")
