"""user counts kept by triggers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 19:20:00

An unfiltered listing reports ``total`` from this row instead of counting every
user. Triggers keep it exact whatever writes the users table (the services, a
bulk import, a COPY): statement-level with transition tables on PostgreSQL (a
COPY of a million rows costs one update), row-level on SQLite.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PG_FUNCTION = """
CREATE FUNCTION usermgmt_count_users() RETURNS trigger AS $$
DECLARE
    d_live bigint := 0;
    d_deleted bigint := 0;
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        SELECT d_live + count(*) FILTER (WHERE deleted_at IS NULL),
               d_deleted + count(*) FILTER (WHERE deleted_at IS NOT NULL)
          INTO d_live, d_deleted FROM new_rows;
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        SELECT d_live - count(*) FILTER (WHERE deleted_at IS NULL),
               d_deleted - count(*) FILTER (WHERE deleted_at IS NOT NULL)
          INTO d_live, d_deleted FROM old_rows;
    END IF;
    IF d_live <> 0 OR d_deleted <> 0 THEN
        UPDATE user_counts SET live = live + d_live, deleted = deleted + d_deleted WHERE id = 1;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""
PG_TRIGGERS = [
    "CREATE TRIGGER users_count_insert AFTER INSERT ON users REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usermgmt_count_users()",
    "CREATE TRIGGER users_count_update AFTER UPDATE ON users "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usermgmt_count_users()",
    "CREATE TRIGGER users_count_delete AFTER DELETE ON users REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usermgmt_count_users()",
]
SQLITE_TRIGGERS = [
    """CREATE TRIGGER users_count_insert AFTER INSERT ON users BEGIN
        UPDATE user_counts SET live = live + (NEW.deleted_at IS NULL),
            deleted = deleted + (NEW.deleted_at IS NOT NULL) WHERE id = 1;
    END""",
    """CREATE TRIGGER users_count_update AFTER UPDATE OF deleted_at ON users BEGIN
        UPDATE user_counts
           SET live = live + (NEW.deleted_at IS NULL) - (OLD.deleted_at IS NULL),
               deleted = deleted + (NEW.deleted_at IS NOT NULL) - (OLD.deleted_at IS NOT NULL)
         WHERE id = 1;
    END""",
    """CREATE TRIGGER users_count_delete AFTER DELETE ON users BEGIN
        UPDATE user_counts SET live = live - (OLD.deleted_at IS NULL),
            deleted = deleted - (OLD.deleted_at IS NOT NULL) WHERE id = 1;
    END""",
]
TRIGGER_NAMES = ("users_count_insert", "users_count_update", "users_count_delete")


def upgrade() -> None:
    op.create_table(
        "user_counts",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("live", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("deleted", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_counts")),
    )
    op.execute(
        "INSERT INTO user_counts (id, live, deleted) SELECT 1, "
        "(SELECT count(*) FROM users WHERE deleted_at IS NULL), "
        "(SELECT count(*) FROM users WHERE deleted_at IS NOT NULL)"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON users" if is_pg else ""))
    if is_pg:
        op.execute("DROP FUNCTION IF EXISTS usermgmt_count_users()")
    op.drop_table("user_counts")
