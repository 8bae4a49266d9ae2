"""What a user query selects and in which order: WHERE conditions, ORDER BY."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, exists, func, literal_column, select

from usermgmt.core.models import User, UserRole, UserSearch
from usermgmt.core.reads.search_index import escape_like
from usermgmt.core.schemas import UserQuery
from usermgmt.core.status import status_expression, where_status

SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "last_login_at": User.last_login_at,
}
# The name as tables show it (first, then last), case-folded: the expression of the
# index ix_users_live_name_id (migration 0014), written with literals so that both
# databases match a query's expression to the index's.
_EMPTY = literal_column("''")
NAME_KEY = func.lower(
    func.coalesce(User.first_name, _EMPTY)
    + literal_column("' '")
    + func.coalesce(User.last_name, _EMPTY)
)
NAME_KEY_LENGTH = 201
STATUS_KEY_LENGTH = 10  # the longest status word is "unverified"


def sort_key(key: str, now: Any):
    """The SQL of sort ``key`` (without its ``-``): a column, the name's expression, or
    the status word at ``now`` (which no index can hold: it changes with the time)."""
    if key == "name":
        return NAME_KEY
    if key == "status":
        return status_expression(User, now)
    return SORT_COLUMNS[key]


def search_term(q: UserQuery) -> str | None:
    """The normalised search term of ``q``, or None when there is nothing to search for."""
    return (q.search or "").strip().lower() or None


def only_search(q: UserQuery) -> bool:
    """Whether ``q`` filters live users by a search term and nothing else."""
    return bool(search_term(q)) and not (q.role or q.status or q.include_deleted)


def contains(column, term: str):
    """``column`` contains ``term`` (LIKE with the wildcards in ``term`` escaped).

    The pattern is written into the SQL text at execution time (the compiled
    statement is still cached): as a bound parameter, PostgreSQL switches a
    prepared statement to a generic plan after five runs, and a generic plan
    that trusts the trigram index walks all of it for a one-letter term, where
    the pattern's own plan scans.
    """
    pattern = bindparam("search", f"%{escape_like(term)}%", Text, unique=True, literal_execute=True)
    return column.like(pattern, escape="\\")


def user_filters(
    q: UserQuery,
    now: datetime,
    matches: list[uuid.UUID] | None = None,
    *,
    search_copy: bool = True,
) -> list[Any]:
    """The WHERE conditions for ``q`` at ``now`` (a status filter depends on it);
    ``matches``, when given, are the search's ids.

    A search of live users goes through the narrow ``user_search`` copy unless
    ``search_copy`` is false: a page that walks the users table in sort order
    has each row in hand, and testing its own ``search_text`` saves a probe of
    the copy per row walked (on SQLite the copy's whole match set would be
    built before the first row).
    """
    conds: list[Any] = []
    if not q.include_deleted:
        conds.append(User.deleted_at.is_(None))
    term = search_term(q)
    if term and matches is not None:
        conds.append(User.id.in_(matches))
    elif term and (q.include_deleted or not search_copy):
        conds.append(contains(User.search_text, term))
    elif term:  # live users only: the narrow copy (migration 0005) is what's scanned
        # IN: SQLite gathers the copy's matches first (a scan of the narrow table)
        # and probes users by key; PostgreSQL plans it as a semi-join.
        conds.append(
            User.id.in_(select(UserSearch.user_id).where(contains(UserSearch.search_text, term)))
        )
    if q.role:
        conds.append(exists().where(UserRole.user_id == User.id, UserRole.role_name == q.role))
    if q.status:  # the one rule of usermgmt.core.status, in SQL
        conds.append(where_status(q.status, User, now))
    return conds


def order(sort: str, now: Any) -> tuple[Any, Any]:
    """The ORDER BY of ``sort``: its key (NULLs last), then id in the same direction."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = sort_key(key, now)
    direction = column.desc() if descending else column.asc()
    if key == "last_login_at":
        direction = direction.nulls_last()
    return direction, User.id.desc() if descending else User.id.asc()
