"""One page of users in sort order: walked, gathered and sorted, or by a constant statement.

The page is found as (id, sort key) pairs alone (an index walk, which also
skips an offset cheaply), then its users are read by one column query
(``user_rows.users_out_by_ids``).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, bindparam, select
from sqlalchemy.orm import Session

from usermgmt.core.db.precompiled import reader_of
from usermgmt.core.models import User, UserCounts
from usermgmt.core.reads._filters import order, search_term, sort_key, user_filters
from usermgmt.core.reads._id_buckets import IdBuckets, id_binds
from usermgmt.core.reads._keyset import after, encode_cursor
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.reads.user_rows import users_out_by_ids
from usermgmt.core.schemas import UserOut, UserQuery


class Pages:
    """Pages of one database's users, found as ``tuning`` says."""

    def __init__(self, dialect: str, tuning: Tuning) -> None:
        self.dialect = dialect
        self.tuning = tuning
        self.buckets = IdBuckets(tuning.id_buckets)

    def rows(
        self,
        session: Session,
        q: UserQuery,
        now: datetime,
        total: int | None = None,
        skip: int = 0,
        matches: list[uuid.UUID] | None = None,
    ) -> tuple[list[UserOut], str | None]:
        """One page of matching users and the cursor of the next page (None at the end).

        ``now``: the present of the status filter and of each user's status.

        ``total``, when the caller knows it, picks the plan: no query when nothing
        matches, one scan and a sort when matches are rare. ``skip`` passes over
        that many more rows first (after the cursor, or after the page's offset).
        ``matches`` are the search's ids when already gathered.
        """
        beyond = []
        if q.cursor:  # decoded first: a bad cursor is an error even when nothing matches
            beyond.append(after(q.sort, q.cursor, self.dialect, now))
        if total == 0:
            return [], None
        offset = skip + (0 if q.cursor else (q.page - 1) * q.limit)
        constant = self._constant(q, matches) if not beyond else None
        if constant is not None:
            stmt, params = constant
            params.update(limit=q.limit + 1, offset=offset)
            found = reader_of(session).execute(stmt, params).all()
        else:
            stmt = select(User.id, sort_key(q.sort.lstrip("-"), now))
            # (Unfiltered, the total is everyone: never rare.)
            if matches is None and total is not None and self._rare(session, q, total):
                gathered = self._gathered([*user_filters(q, now), *beyond])
                stmt = stmt.where(User.id.in_(select(gathered.c.id)))
            else:
                stmt = stmt.where(*user_filters(q, now, matches, search_copy=False), *beyond)
            stmt = stmt.order_by(*order(q.sort, now))
            if offset:
                stmt = stmt.offset(offset)
            found = session.execute(stmt.limit(q.limit + 1)).all()
        has_more = len(found) > q.limit
        found = found[: q.limit]
        next_cursor = None
        if has_more and found:
            last_id, last_value = found[-1]
            next_cursor = encode_cursor(q.sort, last_value, last_id)
        users = users_out_by_ids(session, [row[0] for row in found], self.buckets, now)
        return users, next_cursor

    def _constant(self, q: UserQuery, matches: list[uuid.UUID] | None):
        """The constant statement and parameters of ``q``'s page (no cursor), if it has one:
        for gathered matches of a search, or for everyone (no filter at all)."""
        if q.role or q.status or q.sort.lstrip("-") == "status":  # (status: depends on now)
            return None
        if matches and self.buckets.fit(matches):
            size, params = self.buckets.params(matches)
            return _page_statement(q.sort, size, include_deleted=False), params
        if self.tuning.constant_pages and matches is None and not search_term(q):
            return _page_statement(q.sort, 0, include_deleted=q.include_deleted), {}
        return None

    def _rare(self, session: Session, q: UserQuery, total: int) -> bool:
        """Whether walking the sort index would visit more rows than ``walk_limit``."""
        counts = session.get(UserCounts, 1)
        population = (counts.live + counts.deleted) if counts else total
        return population * (q.limit + 1) / total > self.tuning.walk_limit

    def _gathered(self, conds: list[Any]):
        """The matching ids gathered by one scan, so the page sorts them instead of walking."""
        matches = select(User.id).where(*conds).cte("matches")
        if self.dialect == "postgresql":
            matches = matches.prefix_with("MATERIALIZED")
        return matches


@functools.cache
def _page_statement(sort: str, size: int, *, include_deleted: bool):
    """(id, sort key) of a page in ``sort`` order (limit, offset parameters): of
    everyone, or (``size`` > 0) among that many ids."""
    conds = [] if include_deleted else [User.deleted_at.is_(None)]
    if size:
        conds.append(User.id.in_(id_binds(size)))
    return (
        select(User.id, sort_key(sort.lstrip("-"), None))
        .where(*conds)
        .order_by(*order(sort, None))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
