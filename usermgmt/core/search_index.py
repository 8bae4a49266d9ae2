"""SQLite's trigram index of the search copy (FTS5, migration 0009), where it exists.

A term of three characters or more is looked up in the index instead of
scanning ``user_search``: FTS5's trigram tokenizer answers a quoted phrase with
the rows that contain it as a substring. Every candidate is still tested with
the same LIKE the scan uses, so the index can only make a search faster, never
change what it finds.

The index is missing where the SQLite library has no FTS5 or no trigram
tokenizer (before 3.34); searches then scan the copy as they always did.
PostgreSQL answers the same searches from its trigram GIN index instead.
"""

from __future__ import annotations

import weakref

from sqlalchemy import Integer, Select, Text, bindparam, column, literal_column, select, table
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from usermgmt.core.models import UserSearch

MIN_TERM = 3  # a trigram: shorter terms have none to look up
INDEX_TABLE = "user_search_fts"

_index = table(INDEX_TABLE, column("rowid", Integer))
_copy_rid = literal_column("user_search.rid", Integer)
# Which engines' databases have the index; only a positive answer is kept, so a
# database migrated after the first look is seen as soon as the index exists.
_known: weakref.WeakKeyDictionary[Engine, bool] = weakref.WeakKeyDictionary()


def exists(engine: Engine) -> bool:
    """Whether the database behind ``engine`` has the index (SQLite only)."""
    if engine.dialect.name != "sqlite":
        return False
    if _known.get(engine):
        return True
    with engine.connect() as conn:
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (INDEX_TABLE,)
        ).first()
    if found:
        _known[engine] = True
    return found is not None


def serves(session: Session, term: str | None) -> bool:
    """Whether ``term``'s live matches are looked up in the index in ``session``'s database."""
    if not term or len(term) < MIN_TERM:
        return False
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    return exists(engine)


def phrase(term: str) -> str:
    """``term`` as an FTS5 phrase: quoted, with its own double quotes doubled."""
    return '"' + term.replace('"', '""') + '"'


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def matching_ids(term: str, limit: int) -> tuple[Select, dict[str, object]]:
    """The ids of the live users whose search text contains ``term`` (3+ characters),
    at most ``limit`` of them: a constant statement and its parameters.

    The index drives (a MATCH constrains only the FTS5 table), each hit is
    joined to its row of the copy by ``rid`` and tested with the scan's LIKE.
    The statement is built once, so it runs precompiled (usermgmt.core.db.Plan).
    """
    params = {"phrase": phrase(term), "pattern": f"%{escape_like(term)}%", "limit": limit}
    return _MATCHING_IDS, params


_MATCHING_IDS = (
    select(UserSearch.user_id)
    .select_from(_index)
    .join(UserSearch.__table__, _copy_rid == _index.c.rowid)
    .where(
        literal_column(INDEX_TABLE).op("MATCH")(bindparam("phrase", type_=Text)),
        UserSearch.search_text.like(bindparam("pattern", type_=Text), escape="\\"),
    )
    .limit(bindparam("limit", type_=Integer))
)
