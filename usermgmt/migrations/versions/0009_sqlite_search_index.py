"""SQLite: a trigram full-text index (FTS5) over the search copy

Without it every substring search on SQLite is a scan of ``user_search``, for
the page and again for its count, whatever the term. FTS5's trigram tokenizer
(SQLite 3.34+) indexes every three-character sequence with its position, so a
phrase query finds the rows containing a term of three or more characters
without reading the others: a rare term is answered without a scan. A common
term would cost the index more than the scan, so the read model gives up on the
index past 250 matches (usermgmt.core.reads.tuning).

The index needs a stable integer key per row. ``user_search`` had only its
implicit rowid, which VACUUM may renumber, so on SQLite it is rebuilt with an
``INTEGER PRIMARY KEY`` (``rid``) and ``user_id`` kept unique; the model, which
names ``user_id`` as the key, is unchanged (``rid`` and the unique constraint
are left out of autogenerate's comparison: usermgmt.core.migrate). The index is
an external-content FTS5 table over that copy, kept by triggers on the copy, so
every writer that keeps the copy (the triggers of 0005) keeps the index too.

Where the SQLite library lacks FTS5 or its trigram tokenizer, the table is not
created and searches scan the copy as before (usermgmt.core.reads.search_index).
PostgreSQL has its trigram GIN index (0005): nothing to do there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22 03:00:00.000000
"""

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# 0005's triggers on users, which fill the copy: dropped while the copy is
# rebuilt (a rename would check them against a missing table), then restored.
USERS_TRIGGERS = [
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
USERS_TRIGGER_NAMES = ("users_search_insert", "users_search_update")

COPY_WITH_RID = """CREATE TABLE user_search_new (
    rid INTEGER PRIMARY KEY,
    user_id CHAR(32) NOT NULL,
    search_text TEXT NOT NULL,
    CONSTRAINT uq_user_search_user_id UNIQUE (user_id),
    CONSTRAINT fk_user_search_user_id_users FOREIGN KEY(user_id)
        REFERENCES users (id) ON DELETE CASCADE
)"""
COPY_WITHOUT_RID = """CREATE TABLE user_search_new (
    user_id CHAR(32) NOT NULL,
    search_text TEXT NOT NULL,
    CONSTRAINT pk_user_search PRIMARY KEY (user_id),
    CONSTRAINT fk_user_search_user_id_users FOREIGN KEY(user_id)
        REFERENCES users (id) ON DELETE CASCADE
)"""

# case_sensitive 1: the copy and the terms are lower-cased by the application,
# so the index keeps characters as they are (no second, different folding).
INDEX = (
    "CREATE VIRTUAL TABLE user_search_fts USING fts5("
    "search_text, content='user_search', content_rowid='rid', "
    "tokenize='trigram case_sensitive 1')"
)
# An external-content index is told the old text of a row it drops.
INDEX_TRIGGERS = [
    """CREATE TRIGGER user_search_fts_insert AFTER INSERT ON user_search BEGIN
        INSERT INTO user_search_fts (rowid, search_text) VALUES (NEW.rid, NEW.search_text);
    END""",
    """CREATE TRIGGER user_search_fts_delete AFTER DELETE ON user_search BEGIN
        INSERT INTO user_search_fts (user_search_fts, rowid, search_text)
        VALUES ('delete', OLD.rid, OLD.search_text);
    END""",
    """CREATE TRIGGER user_search_fts_update AFTER UPDATE ON user_search BEGIN
        INSERT INTO user_search_fts (user_search_fts, rowid, search_text)
        VALUES ('delete', OLD.rid, OLD.search_text);
        INSERT INTO user_search_fts (rowid, search_text) VALUES (NEW.rid, NEW.search_text);
    END""",
]
INDEX_TRIGGER_NAMES = ("user_search_fts_insert", "user_search_fts_delete", "user_search_fts_update")


def _trigram_available(conn) -> bool:
    try:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE temp.usermgmt_trigram_probe USING fts5(t, tokenize='trigram')"
        )
    except DBAPIError:  # no FTS5 module, or no trigram tokenizer (SQLite < 3.34)
        return False
    conn.exec_driver_sql("DROP TABLE temp.usermgmt_trigram_probe")
    return True


def _rebuild_copy(create: str) -> None:
    for name in USERS_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute(create)
    op.execute(
        "INSERT INTO user_search_new (user_id, search_text) "
        "SELECT user_id, search_text FROM user_search ORDER BY user_id"
    )
    op.execute("DROP TABLE user_search")
    op.execute("ALTER TABLE user_search_new RENAME TO user_search")
    for statement in USERS_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    _rebuild_copy(COPY_WITH_RID)
    if not _trigram_available(bind):
        return
    op.execute(INDEX)
    for statement in INDEX_TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO user_search_fts (user_search_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in INDEX_TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS user_search_fts")
    _rebuild_copy(COPY_WITHOUT_RID)
