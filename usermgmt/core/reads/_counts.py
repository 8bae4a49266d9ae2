"""Counting the users a query matches, and a common search's count in two halves."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Text, bindparam, func, select
from sqlalchemy.orm import Session

from usermgmt.core.models import User, UserCounts, UserSearch
from usermgmt.core.reads._filters import contains, only_search, search_term, user_filters
from usermgmt.core.reads.search_index import MIN_TERM, escape_like
from usermgmt.core.schemas import UserQuery


def count_users(
    session: Session, q: UserQuery, now: datetime, matches: list[uuid.UUID] | None = None
) -> int:
    """How many users match the filters of ``q`` at ``now`` (page, cursor and sort ignored).

    An unfiltered count reads the trigger-kept counts instead of counting rows,
    a search of live users counts in the narrow ``user_search`` copy alone, or
    is the number of ``matches`` already gathered.
    """
    term = search_term(q)
    if not term and not q.role and not q.status:
        counts = session.get(UserCounts, 1)
        if counts is not None:
            return counts.live + (counts.deleted if q.include_deleted else 0)
    if only_search(q):
        if matches is not None:
            return len(matches)
        stmt = select(func.count()).where(contains(UserSearch.search_text, term))
        return session.execute(stmt).scalar_one()
    stmt = select(func.count()).select_from(User).where(*user_filters(q, now, matches))
    return session.execute(stmt).scalar_one()


def counts_in_halves(q: UserQuery) -> bool:
    """Whether ``q``'s count may run as two half counts beside its page (PostgreSQL).

    For a trigram-served search of live users and nothing else: the page's plan
    does not need the total (the planner's estimate picks walk or gather), and
    the count is the long part. Under READ COMMITTED each statement sees its
    own snapshot anyway, so one transaction bought no more consistency than this.
    """
    return only_search(q) and len(search_term(q)) >= MIN_TERM


# The two partitions of user_search on PostgreSQL (migration 0008), as conditions
# the planner prunes by: each count of a half reads one partition and its index.
# Built once with bound parameters, so they run precompiled. A prepared statement
# may then get PostgreSQL's generic plan, which is the trigram bitmap scan: right
# for every term this path takes (three characters or more; see counts_in_halves).
_MIDPOINT = uuid.UUID("80000000-0000-0000-0000-000000000000")
_PATTERN = bindparam("pattern", type_=Text)
_BOUND = bindparam("midpoint", type_=UserSearch.user_id.type)
SEARCH_HALVES = (UserSearch.user_id < _BOUND, UserSearch.user_id >= _BOUND)
_COUNT_HALVES = tuple(
    select(func.count()).where(UserSearch.search_text.like(_PATTERN, escape="\\"), condition)
    for condition in SEARCH_HALVES
)


def count_search_half(conn, q: UserQuery, half: int) -> int:
    """How many live users in half ``half`` (0 or 1) of the copy match ``q``'s search.

    ``conn`` is a Reader or a Session (anything with ``execute``).
    """
    term = search_term(q)
    if not term:
        raise ValueError("a half count is for a search")
    params = {"pattern": f"%{escape_like(term)}%", "midpoint": _MIDPOINT}
    return conn.execute(_COUNT_HALVES[half], params).scalar_one()
