"""live users by last login, newest first: an index in the listing's own order

``sort=-last_login_at`` orders ``last_login_at DESC NULLS LAST, id DESC`` (users
who never logged in come last). The ascending index read backwards gives NULLS
FIRST, so PostgreSQL sorted every live user for the first page of the
console's and the API's "recently active" view. This partial index is that
order exactly (the first page and offsets into it read from the index alone).
SQLite's DESC already puts NULLs last: its existing index serves.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 22:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_users_live_last_login_at_desc",
        "users",
        [sa.text("last_login_at DESC NULLS LAST"), sa.text("id DESC")],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_users_live_last_login_at_desc", table_name="users")
