"""PostgreSQL: the search copy in two partitions by user id, counted side by side

A search's exact total is a bitmap scan of the trigram index followed by a
visit of every heap page holding a candidate, for a common term most of the
copy's pages: the longest part of the request. PostgreSQL's own parallel query
splits that visit but starts its workers per query, which costs more than it
saves here.

Partitioned by range of ``user_id`` at the midpoint of the UUID space (ids are
random, so each half holds half the users and its own trigram index), the count
becomes two counts of half the size that the read model runs at once on two
pooled connections (usermgmt.core.reads), while
the page is read on a third.

The table keeps its name, columns, keys and index names, so the model, the
triggers of 0005 and every query are unchanged; the partitions
(``user_search_low``, ``user_search_high``) are left out of autogenerate's
comparison (usermgmt.core.migrate.PG_PARTITIONS). SQLite keeps one table.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 00:15:00.000000
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

MIDPOINT = "80000000-0000-0000-0000-000000000000"


def _fill_and_index() -> None:
    op.execute(
        "INSERT INTO user_search (user_id, search_text) "
        "SELECT id, search_text FROM users WHERE deleted_at IS NULL"
    )
    op.execute(
        "ALTER TABLE user_search ADD CONSTRAINT fk_user_search_user_id_users "
        "FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE"
    )
    op.execute(
        "CREATE INDEX ix_user_search_search_text_trgm ON user_search "
        "USING gin (search_text gin_trgm_ops)"
    )
    # As in 0005: the planner needs the long histogram to see rare terms.
    op.execute("ALTER TABLE user_search ALTER COLUMN search_text SET STATISTICS 1000")
    op.execute("ANALYZE user_search")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Rebuilt from users (what the copy is by definition) rather than moved.
    op.execute("DROP TABLE user_search")
    op.execute(
        "CREATE TABLE user_search ("
        " user_id uuid NOT NULL,"
        " search_text text NOT NULL,"
        " CONSTRAINT pk_user_search PRIMARY KEY (user_id)"
        ") PARTITION BY RANGE (user_id)"
    )
    op.execute(
        "CREATE TABLE user_search_low PARTITION OF user_search "
        f"FOR VALUES FROM (MINVALUE) TO ('{MIDPOINT}')"
    )
    op.execute(
        "CREATE TABLE user_search_high PARTITION OF user_search "
        f"FOR VALUES FROM ('{MIDPOINT}') TO (MAXVALUE)"
    )
    _fill_and_index()


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TABLE user_search")  # its partitions go with it
    op.execute(
        "CREATE TABLE user_search ("
        " user_id uuid NOT NULL,"
        " search_text text NOT NULL,"
        " CONSTRAINT pk_user_search PRIMARY KEY (user_id)"
        ")"
    )
    _fill_and_index()
