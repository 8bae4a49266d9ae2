"""The user read model: every question the faces ask about users, answered here.

One user (by id, or by id, email or username), a page with its total, a page
without it plus a separate count (the console's way of paging), and a stream
of every match. How each answer is found (gathering a rare search's matches,
walking an index, constant statements per id bucket, counting a common
search's halves beside its page) is private to this package and tuned by
:class:`usermgmt.core.reads.tuning.Tuning`. Writes are UserService's
(usermgmt.core.services.users).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import bindparam, select

from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.context import Actor
from usermgmt.core.db import Database
from usermgmt.core.errors import NotFound, PermissionDenied, ValidationError
from usermgmt.core.models import User
from usermgmt.core.reads._counts import count_search_half, count_users, counts_in_halves
from usermgmt.core.reads._gather import gather_matches
from usermgmt.core.reads._keyset import decode_cursor
from usermgmt.core.reads._pages import Pages
from usermgmt.core.reads.search_index import SearchIndex
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.reads.user_rows import user_out_by_id
from usermgmt.core.schemas import (
    PageMeta,
    UserOut,
    UserPage,
    UserQuery,
    UserRows,
    normalise_identifier,
    parse,
)
from usermgmt.core.services.base import parse_uuid

MAX_SKIP = 100_000_000  # what the deepest page number allows
_ID_BY_EMAIL = select(User.id).where(User.email == bindparam("key"))
_ID_BY_USERNAME = select(User.id).where(User.username == bindparam("key"))
_ID_PREFIX = re.compile(r"^[0-9a-f]{8,31}$")  # the short ids tables show are 8 characters
MAX_CANDIDATES = 5  # an ambiguous prefix names this many of its matches


class UserReads:
    """Reads of users for one database.

    ``clock``: the present of statuses and status filters (the system's by default);
    ``search_index``: SQLite's trigram index (found by looking, by default);
    ``count_executor``: where a common search's half counts run on PostgreSQL
    (by default a pool of ``tuning.count_threads`` threads, owned and shut down
    by :meth:`close`; none when ``count_threads`` is 0).
    """

    def __init__(
        self,
        db: Database,
        tuning: Tuning | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        search_index: SearchIndex | None = None,
        count_executor: Executor | None = None,
    ) -> None:
        self.db = db
        self.tuning = tuning = tuning or Tuning()
        self.clock = clock
        self._pages = Pages(db.dialect, tuning)
        self._index = (search_index or SearchIndex(db.engine)) if db.is_sqlite else None
        # The copy is in two partitions on PostgreSQL only (migration 0008).
        self._halves: Executor | None = None
        self._owned: ThreadPoolExecutor | None = None
        if db.is_postgres and tuning.count_threads:
            if count_executor is None:
                count_executor = self._owned = ThreadPoolExecutor(
                    max_workers=tuning.count_threads, thread_name_prefix="usermgmt-count"
                )
            self._halves = count_executor

    def close(self) -> None:
        """Stop the count threads this read model started (if any)."""
        if self._owned is not None:
            self._owned.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> UserReads:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # ---- one user ----------------------------------------------------------

    def get(self, actor: Actor, user_id: str, *, include_deleted: bool = False) -> UserOut:
        uid = parse_uuid(user_id)
        if uid is None:
            raise NotFound("User not found")
        actor.require_scope("users:read")
        if not actor.is_self(uid):
            actor.require_moderator("users:read")
        if include_deleted:
            actor.require_admin("users:read")
        with self.db.connect() as conn:
            found = user_out_by_id(conn, uid, self.clock.now(), include_deleted=include_deleted)
        if found is None:
            raise NotFound("User not found")
        return found

    def find(self, actor: Actor, ref: str, *, include_deleted: bool = False) -> UserOut:
        """By UUID, email or username (the CLI's ID_OR_EMAIL_OR_USERNAME).

        Who may read users may find them: moderators and admins anyone, a user
        only themselves (any other reference is refused, found or not, so a
        refusal tells nothing). ``include_deleted`` is for admins, as in :meth:`get`.
        """
        if include_deleted:
            actor.require_admin("users:read")
        if not actor.is_moderator:
            actor.require_authenticated("users:read")
            found = self._lookup(ref, include_deleted=False, prefixes=False)
            if found is None or not actor.is_self(found.id):
                raise PermissionDenied()
            return found
        actor.require_moderator("users:read")
        found = self._lookup(ref, include_deleted=include_deleted)
        if found is None:
            ref = ref.strip()
            raise NotFound("User not found" if parse_uuid(ref) else f"No user {ref!r}")
        return found

    def _lookup(self, ref: str, *, include_deleted: bool, prefixes: bool = True) -> UserOut | None:
        """By UUID, then email or username, then (``prefixes``) a unique id prefix."""
        ref = ref.strip()
        uid = parse_uuid(ref)
        now = self.clock.now()
        with self.db.connect() as conn:
            if uid is None:
                key = normalise_identifier(ref)
                by = _ID_BY_EMAIL if "@" in key else _ID_BY_USERNAME
                uid = conn.execute(by, {"key": key}).scalar_one_or_none()
                if uid is None and prefixes:
                    uid = _id_by_prefix(conn, ref, include_deleted=include_deleted)
                if uid is None:
                    return None
            return user_out_by_id(conn, uid, now, include_deleted=include_deleted)

    def resolve_id(self, actor: Actor, ref: str, *, include_deleted: bool = True) -> str:
        return str(self.find(actor, ref, include_deleted=include_deleted).id)

    # ---- many users --------------------------------------------------------

    def list(self, actor: Actor, query: UserQuery | Mapping[str, Any] | None = None) -> UserPage:
        """A page of the users matching ``query`` and their total."""
        q = self._allowed(actor, parse(UserQuery, query))
        now = self.clock.now()
        with self.db.read() as s:
            matches = gather_matches(s, q, self.tuning, self._index)
            if matches is not None or not self._in_halves(q):
                total = count_users(s, q, now, matches)
                users, next_cursor = self._pages.rows(s, q, now, total, matches=matches)
                return _page(q, total, users, next_cursor)
        # A common term on PostgreSQL: counted alongside its page.
        halves = self._count_halves(q)
        with self.db.read() as s:
            users, next_cursor = self._pages.rows(s, q, now)
        return _page(q, sum(h.result() for h in halves), users, next_cursor)

    def list_rows(
        self,
        actor: Actor,
        query: UserQuery | Mapping[str, Any] | None = None,
        *,
        total: int | None = None,
        skip: int = 0,
    ) -> UserRows:
        """Like :meth:`list` without the COUNT: ``UserRows(data, next_cursor)``.

        A client that pages through a large result (the console) counts once per
        filter with :meth:`count` instead of once per page, and may pass that
        count as ``total`` so a rare match is fetched by one scan, not an index walk.
        ``skip`` passes over that many more rows first, after the cursor (a jump
        from a known position costs the rows jumped, not the rows above it).
        """
        q = parse(UserQuery, query)
        if not 0 <= skip <= MAX_SKIP:
            raise ValidationError.for_field("skip", f"must be between 0 and {MAX_SKIP}")
        self._allowed(actor, q)
        with self.db.read() as s:
            # A term the trigram index serves is gathered first, as in list (not a
            # short term's scan: with a known total that page may need no query),
            # unless ``total`` already says the index would give up.
            matches = None
            if total is None or 0 < total <= self.tuning.index_gather_limit:
                matches = gather_matches(s, q, self.tuning, self._index, index_only=True)
            users, next_cursor = self._pages.rows(
                s, q, self.clock.now(), total, skip, matches=matches
            )
        return UserRows(data=users, next_cursor=next_cursor)

    def count(self, actor: Actor, query: UserQuery | Mapping[str, Any] | None = None) -> int:
        """How many users match the filters of ``query`` (page, cursor and sort ignored)."""
        q = self._allowed(actor, parse(UserQuery, query))
        if self._in_halves(q):
            return sum(h.result() for h in self._count_halves(q))
        with self.db.read() as s:
            matches = gather_matches(s, q, self.tuning, self._index, index_only=True)
            return count_users(s, q, self.clock.now(), matches)

    def stream(
        self, actor: Actor, query: UserQuery | Mapping[str, Any] | None = None, *, batch: int = 500
    ) -> Iterator[UserOut]:
        """Every user matching ``query`` (from its cursor, if any), in its order.

        Unlike ``list`` it does not count: keyset batches, each in its own short
        read transaction, so any number of users streams in flat memory and time.
        Permissions and the query are checked now, before the first user.
        """
        q = self._allowed(actor, parse(UserQuery, query))
        if q.cursor:
            decode_cursor(q.cursor, q.sort)  # a bad cursor fails now, not mid-stream
        q = q.model_copy(update={"limit": batch, "page": 1})

        def users() -> Iterator[UserOut]:
            nonlocal q
            while True:
                with self.db.read() as s:
                    batch_out, cursor = self._pages.rows(s, q, self.clock.now())
                yield from batch_out
                if cursor is None:
                    return
                q = q.model_copy(update={"cursor": cursor})

        return users()

    # ---- private -----------------------------------------------------------

    @staticmethod
    def _allowed(actor: Actor, q: UserQuery) -> UserQuery:
        actor.require_moderator("users:read")
        if q.include_deleted:
            actor.require_admin("users:read")
        return q

    def _in_halves(self, q: UserQuery) -> bool:
        return self._halves is not None and counts_in_halves(q)

    def _count_halves(self, q: UserQuery) -> list[Future[int]]:
        """The counts of the two partitions of the search copy, started side by side."""
        return [self._halves.submit(self._count_half, q, half) for half in (0, 1)]

    def _count_half(self, q: UserQuery, half: int) -> int:
        # One statement: autocommit, no BEGIN and ROLLBACK round trips.
        with self.db.connect() as conn:
            return count_search_half(conn, q, half)


def _page(q: UserQuery, total: int, users: list[UserOut], next_cursor: str | None) -> UserPage:
    return UserPage(
        data=users,
        meta=PageMeta(
            total=total,
            page=None if q.cursor else q.page,
            limit=q.limit,
            total_pages=math.ceil(total / q.limit) if total else 0,
            next_cursor=next_cursor,
        ),
    )


def _id_by_prefix(conn: Any, ref: str, *, include_deleted: bool) -> uuid.UUID | None:
    """The one user id starting with ``ref`` (8 or more hex digits, dashes ignored).

    A range of the primary key, so any size of table answers from its index.
    More than one match is a usage error that names some of them.
    """
    digits = ref.replace("-", "").lower()
    if not _ID_PREFIX.match(digits):
        return None
    low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
    query = select(User.id).where(User.id.between(low, high))
    if not include_deleted:
        query = query.where(User.deleted_at.is_(None))
    found = conn.execute(query.order_by(User.id).limit(MAX_CANDIDATES + 1)).scalars().all()
    if len(found) > 1:
        shown = ", ".join(str(u) for u in found[:MAX_CANDIDATES])
        more = " and more" if len(found) > MAX_CANDIDATES else ""
        raise ValidationError(
            f"{ref!r} is the start of several user ids: {shown}{more}; give more of the id",
            details={"candidates": [str(u) for u in found[:MAX_CANDIDATES]]},
        )
    return found[0] if found else None
