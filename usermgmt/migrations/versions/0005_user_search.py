"""live users' search haystack in a narrow table kept by triggers

A substring search has to look at every candidate row: for a common term the
trigram index still leaves thousands of rows to recheck, and a term of one or
two characters (no trigram) is a scan of the whole table. This narrow copy of
``search_text`` for live users only (id and text) holds a fraction of the wide
``users`` table's pages, so both cost a fraction as much.

The copy is kept by triggers, so every writer (the services, a bulk import, a
COPY) keeps it exact: statement-level for inserts on PostgreSQL (a COPY of
100,000 rows is one INSERT ... SELECT), row-level otherwise, and only when
``search_text`` or ``deleted_at`` really changed (a login touches neither).
Hard deletes cascade through the foreign key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 21:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PG_FUNCTIONS = [
    """
CREATE FUNCTION usermgmt_search_insert() RETURNS trigger AS $$
BEGIN
    INSERT INTO user_search (user_id, search_text)
    SELECT id, search_text FROM new_rows WHERE deleted_at IS NULL;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""",
    """
CREATE FUNCTION usermgmt_search_update() RETURNS trigger AS $$
BEGIN
    IF NEW.deleted_at IS NULL THEN
        INSERT INTO user_search (user_id, search_text) VALUES (NEW.id, NEW.search_text)
        ON CONFLICT (user_id) DO UPDATE SET search_text = EXCLUDED.search_text;
    ELSE
        DELETE FROM user_search WHERE user_id = NEW.id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
""",
]
CHANGED = (
    "OLD.search_text IS DISTINCT FROM NEW.search_text "
    "OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at"
)
PG_TRIGGERS = [
    "CREATE TRIGGER users_search_insert AFTER INSERT ON users "
    "REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION usermgmt_search_insert()",
    "CREATE TRIGGER users_search_update AFTER UPDATE OF search_text, deleted_at ON users "
    f"FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION usermgmt_search_update()",
]
SQLITE_TRIGGERS = [
    """CREATE TRIGGER users_search_insert AFTER INSERT ON users
       WHEN NEW.deleted_at IS NULL BEGIN
        INSERT INTO user_search (user_id, search_text) VALUES (NEW.id, NEW.search_text);
    END""",
    """CREATE TRIGGER users_search_update AFTER UPDATE OF search_text, deleted_at ON users
       WHEN OLD.search_text IS NOT NEW.search_text OR OLD.deleted_at IS NOT NEW.deleted_at
       BEGIN
        DELETE FROM user_search WHERE user_id = OLD.id;
        INSERT INTO user_search (user_id, search_text)
        SELECT NEW.id, NEW.search_text WHERE NEW.deleted_at IS NULL;
    END""",
]
TRIGGER_NAMES = ("users_search_insert", "users_search_update")


def upgrade() -> None:
    op.create_table(
        "user_search",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_search_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_search")),
    )
    op.execute(
        "INSERT INTO user_search (user_id, search_text) "
        "SELECT id, search_text FROM users WHERE deleted_at IS NULL"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_user_search_search_text_trgm",
            "user_search",
            ["search_text"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        )
        # The planner's LIKE estimate tests the pattern against the column's
        # histogram: 1,001 entries tell a term in 0.1% of the rows from a rare one
        # (the default 101 cannot see below 1%, and mis-plan such a term's page).
        # Counts read the copy; pages that walk the sort order test users' own.
        op.execute("ALTER TABLE user_search ALTER COLUMN search_text SET STATISTICS 1000")
        op.execute("ALTER TABLE users ALTER COLUMN search_text SET STATISTICS 1000")
        for statement in PG_FUNCTIONS + PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    is_pg = op.get_bind().dialect.name == "postgresql"
    for name in TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON users" if is_pg else ""))
    if is_pg:
        op.execute("ALTER TABLE users ALTER COLUMN search_text SET STATISTICS -1")
        op.execute("DROP FUNCTION IF EXISTS usermgmt_search_insert()")
        op.execute("DROP FUNCTION IF EXISTS usermgmt_search_update()")
    op.drop_table("user_search")
