"""Gathering a search's matches first, when they are few and cheap to find.

A rare term's gathered ids are its whole answer: their number is the total and
a page sorts them, so neither a count nor an index walk is needed. A common
term gives up at the limit and is counted and walked instead.
"""

from __future__ import annotations

import uuid

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from usermgmt.core.db.precompiled import reader_of
from usermgmt.core.models import UserSearch
from usermgmt.core.reads._filters import contains, search_term
from usermgmt.core.reads.search_index import MIN_TERM, SearchIndex
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.schemas import UserQuery


def gather_matches(
    session: Session,
    q: UserQuery,
    tuning: Tuning,
    index: SearchIndex | None,
    *,
    index_only: bool = False,
) -> list[uuid.UUID] | None:
    """All ids matching a search of live users, if there are few and finding them is cheap.

    A term of three characters or more: from SQLite's trigram ``index``, or on
    PostgreSQL by the inlined pattern (its trigram index or a scan, as its
    planner picks), up to ``index_gather_limit``. A term of one or two
    characters: by a scan of the copy up to ``gather_limit``. ``index_only``
    allows SQLite's index alone. None when the term is common, or nothing may
    be tried.
    """
    term = search_term(q)
    if not term or q.include_deleted:
        return None
    limit = tuning.gather_limit if len(term) < MIN_TERM else tuning.index_gather_limit
    if not limit:
        return None
    if index is not None and index.serves(term):
        ids = index.matching_ids(reader_of(session), term, limit + 1)
    elif index_only:
        return None
    elif len(term) < MIN_TERM or session.get_bind().dialect.name == "postgresql":
        # PostgreSQL plans the inlined pattern by its statistics (see contains): a
        # rare term is read from the trigram index, a common one is scanned and
        # the scan stops at the limit.
        stmt = select(UserSearch.user_id).where(contains(UserSearch.search_text, term))
        # The limit is written into the SQL too: the plan depends on it.
        cap = bindparam("cap", limit + 1, Integer, literal_execute=True)
        ids = list(session.execute(stmt.limit(cap)).scalars())
    else:
        return None
    return ids if len(ids) <= limit else None
