"""live users by name: an index in the listing's name order

``sort=name`` orders ``lower(coalesce(first_name, '') || ' ' || coalesce(last_name,
''))`` (the name as tables show it, case-folded), then id. Without an index every
page sorted every live user; this partial expression index is that order (the
first page, the next ones by keyset and offsets read from the index). The status
order has no index: a status depends on the time (a lock runs out).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 07:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

NAME_KEY = "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"


def upgrade() -> None:
    op.create_index(
        "ix_users_live_name_id",
        "users",
        [sa.text(NAME_KEY), sa.text("id")],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_users_live_name_id", table_name="users")
