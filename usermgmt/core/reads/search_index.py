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

import uuid

from sqlalchemy import Integer, Text, bindparam, column, literal_column, select, table
from sqlalchemy.engine import Engine

from usermgmt.core.models import UserSearch

MIN_TERM = 3  # a trigram: shorter terms have none to look up
INDEX_TABLE = "user_search_fts"

_index = table(INDEX_TABLE, column("rowid", Integer))
_copy_rid = literal_column("user_search.rid", Integer)


def phrase(term: str) -> str:
    """``term`` as an FTS5 phrase: quoted, with its own double quotes doubled."""
    return '"' + term.replace('"', '""') + '"'


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SearchIndex:
    """The trigram index of one database (an engine's), if it has one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # Only a positive answer is kept, so a database migrated after the first
        # look is seen as soon as the index exists.
        self._found = False

    def exists(self) -> bool:
        """Whether the database has the index (SQLite only)."""
        if self._found:
            return True
        if self._engine.dialect.name != "sqlite":
            return False
        with self._engine.connect() as conn:
            found = conn.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (INDEX_TABLE,)
            ).first()
        self._found = found is not None
        return self._found

    def serves(self, term: str | None) -> bool:
        """Whether ``term``'s live matches are looked up in the index."""
        return bool(term) and len(term) >= MIN_TERM and self.exists()

    def matching_ids(self, conn, term: str, limit: int) -> list[uuid.UUID]:
        """The ids of at most ``limit`` live users whose search text contains ``term``.

        ``conn`` is a Reader or a Session. The index drives (a MATCH constrains
        only the FTS5 table), each hit is joined to its row of the copy by
        ``rid`` and tested with the scan's LIKE. The statement is constant, so
        it runs precompiled.
        """
        params = {"phrase": phrase(term), "pattern": f"%{escape_like(term)}%", "limit": limit}
        return list(conn.execute(_MATCHING_IDS, params).scalars())


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
