"""Lazy, bounded paging over a result of any size.

A :class:`PageCache` keeps at most ``max_pages`` pages of rows (least recently
used go first), so the memory held never depends on the size of the table.
A page is fetched by keyset cursor when the page before it has been seen (its
``next_cursor`` is kept, a few hundred bytes per page). Otherwise, when the
source allows it, a jump is one query that skips rows from the nearest position
known above (a cursor), or from the end in the reverse order, whichever skips
fewer — so jumping 10,000 rows down costs 10,000 skipped index entries wherever
you are, and the last page costs what the first does.

Sources run in worker threads; the cache itself is only touched on the UI
thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from usermgmt.core.context import Actor
from usermgmt.core.ports import Backend
from usermgmt.core.schemas import UserOut

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

PAGE_SIZE = 100  # the core's largest page


class Source(Protocol[R_co]):
    """Where the rows of one query (filters + sort) come from."""

    page_size: int
    can_offset: bool

    def fetch(self, fetch: Fetch) -> tuple[list[R_co], str | None]:
        """The rows of ``fetch.page`` and the cursor of the page after it."""
        ...

    def count(self) -> int | None:
        """How many rows match, or None if the source cannot count."""
        ...


@dataclass(frozen=True)
class Fetch:
    """How to fetch one page: after ``cursor`` (None: from the first row) skip ``skip``
    rows; with ``reverse``, in the opposite order from the end (``skip`` rows from the
    last, ``limit`` rows), the rows then turned round."""

    page: int
    cursor: str | None
    skip: int = 0
    reverse: bool = False
    limit: int | None = None


@dataclass
class PageCache(Generic[R]):
    page_size: int = PAGE_SIZE
    can_offset: bool = True
    can_reverse: bool = False
    max_pages: int = 12
    max_cursors: int | None = 20_000
    pages: OrderedDict[int, list[R]] = field(default_factory=OrderedDict)
    cursors: OrderedDict[int, str] = field(default_factory=OrderedDict)
    total: int | None = None  # from a COUNT, if any
    end: int | None = None  # exact row count, once the last page was seen
    extent: int = 0  # rows known to exist
    stale: set[int] = field(default_factory=set)  # shown until fetched again

    # ---- reading -------------------------------------------------------------

    @property
    def height(self) -> int:
        """Rows to show: exact when known; otherwise what we know plus one loading row."""
        if self.end is not None:
            return self.end
        if self.total is not None:
            return max(self.total, self.extent)
        return self.extent + 1

    @property
    def exact(self) -> bool:
        return self.end is not None or self.total is not None

    def row(self, index: int) -> R | None:
        page, offset = divmod(index, self.page_size)
        rows = self.pages.get(page)
        if rows is None:
            return None
        self.pages.move_to_end(page)
        return rows[offset] if offset < len(rows) else None

    def has_page(self, page: int) -> bool:
        """Whether ``page`` is here and current (a stale page is shown but fetched again)."""
        return page in self.pages and page not in self.stale

    def pages_for(self, first: int, last: int) -> range:
        """Page numbers covering rows ``first``..``last`` (inclusive), clipped to the height."""
        last = min(last, self.height - 1)
        if last < first or last < 0:
            return range(0)
        return range(max(first, 0) // self.page_size, last // self.page_size + 1)

    def plan(self, page: int) -> Fetch | None:
        """How to fetch ``page``, or None if it cannot be reached directly yet."""
        if page == 0:
            return Fetch(0, None)
        cursor = self.cursors.get(page)
        if cursor is not None:
            self.cursors.move_to_end(page)
            return Fetch(page, cursor)
        if not self.can_offset:
            return None
        size = self.page_size
        known = max((k for k in self.cursors if k < page), default=None)
        forward = Fetch(page, self.cursors[known], (page - known) * size) if known else None
        forward = forward or Fetch(page, None, page * size)
        if self.can_reverse and self.exact:
            start = page * size
            end = min(start + size, self.height)
            if end > start and self.height - end < forward.skip:
                return Fetch(page, None, self.height - end, reverse=True, limit=end - start)
        return forward

    # ---- writing -------------------------------------------------------------

    def store(
        self,
        page: int,
        rows: list[R],
        next_cursor: str | None,
        keep: frozenset[int] = frozenset(),
        *,
        reverse: bool = False,
    ) -> None:
        """Keep ``rows`` as ``page``, evicting the least recently used pages not in ``keep``.

        A page fetched in reverse says nothing about what follows it (its cursor
        runs the other way), so it sets neither a cursor nor the end.
        """
        self.pages[page] = rows
        self.pages.move_to_end(page)
        self.stale.discard(page)
        if len(self.pages) > self.max_pages:
            for old in [p for p in self.pages if p not in keep and p != page]:
                if len(self.pages) <= self.max_pages:
                    break
                del self.pages[old]
                self.stale.discard(old)
        if next_cursor is not None:
            self.cursors[page + 1] = next_cursor
            self.cursors.move_to_end(page + 1)
            if self.max_cursors is not None:
                while len(self.cursors) > self.max_cursors:
                    self.cursors.popitem(last=False)
        start = page * self.page_size
        if reverse:
            self.extent = max(self.extent, start + len(rows))
            return
        if next_cursor is None:
            # The last page. A page with rows is authoritative; an empty page past
            # the end (the count was stale) only ever lowers the end.
            seen_end = start + len(rows)
            if rows or self.end is None or seen_end < self.end:
                self.end = seen_end
            self.extent = self.end
        else:
            self.extent = max(self.extent, start + len(rows))
            if self.end is not None and self.extent >= self.end:
                self.end = None  # rows were added since we saw the end

    def set_total(self, total: int | None) -> None:
        self.total = total

    def invalidate(self) -> None:
        """The rows may have changed: fetch them again, showing the old ones meanwhile
        (and for as long as the database is away).

        Where offsets are possible the cursors go: rows added or removed above a page
        shift it, and a page fetched after an old cursor would skip or repeat rows at
        its border with the page above. Each page is fetched again by its offset (one
        query; see :meth:`plan`), the pages after them by their new cursors. (A source
        without offsets keeps its cursors: they are the only way back to its pages.)"""
        self.stale = set(self.pages)
        if self.can_offset:
            self.cursors.clear()


# ---- the sources of the console ---------------------------------------------


@dataclass(frozen=True)
class UserFilter:
    search: str = ""
    role: str | None = None
    status: str | None = None
    include_deleted: bool = False
    sort: str = "-created_at"

    def query(self) -> dict[str, Any]:
        q: dict[str, Any] = {"sort": self.sort, "include_deleted": self.include_deleted}
        if self.search.strip():
            q["search"] = self.search.strip()
        if self.role:
            q["role"] = self.role
        if self.status:
            q["status"] = self.status
        return q

    def describe(self) -> str:
        parts = []
        if self.search.strip():
            parts.append(f"search “{self.search.strip()}”")
        if self.role:
            parts.append(f"role {self.role}")
        if self.status:
            parts.append(f"status {self.status}")
        if self.include_deleted:
            parts.append("with deleted")
        return ", ".join(parts)


# How long a page of a filtered query waits for the count that runs beside it: with
# the count the core fetches rare matches by one scan instead of walking the sort
# index; a count slower than this means common matches, for which the walk is fast.
COUNT_WAIT_S = 0.06


FIRST_PAGE = Fetch(0, None)


@dataclass(frozen=True)
class Ahead:
    """The first page and the count of a query, fetched before a table asks for them
    (see usermgmt.tui.start): a UserSource for the same query hands each out once."""

    actor: Actor
    filter: UserFilter
    page_size: int
    page: Future[tuple[list[UserOut], str | None]]
    count: Future[int | None]


class UserSource:
    """Users matching a filter, through ``services.user_reads.list_rows`` / ``count``.

    Its count and its pages run in worker threads side by side; the first page
    of a narrowing filter (search, role, status) waits briefly for the count and
    passes it on as ``total`` (see COUNT_WAIT_S). Given an ``ahead`` for its
    query, the first page and the count are taken from it (waiting, in the
    worker, if they are still on their way) instead of being fetched again.
    """

    can_offset = True

    def __init__(
        self,
        services: Backend,
        actor: Actor,
        flt: UserFilter,
        page_size: int = PAGE_SIZE,
        *,
        ahead: Ahead | None = None,
    ) -> None:
        self.services = services
        self.actor = actor
        self.filter = flt
        self.page_size = page_size
        self._total: int | None = None
        self._counted = threading.Event()
        self._ahead: dict[str, Future] = {}
        if ahead is not None and (ahead.actor, ahead.filter, ahead.page_size) == (
            actor,
            flt,
            page_size,
        ):
            self._ahead = {"page": ahead.page, "count": ahead.count}

    @property
    def narrows(self) -> bool:
        f = self.filter
        return bool(f.search.strip() or f.role or f.status)

    @property
    def can_reverse(self) -> bool:
        """Whether the opposite sort lists the same rows backwards (NULLS LAST both ways
        for the last login does not)."""
        return self.filter.sort.lstrip("-") != "last_login_at"

    def fetch(self, fetch: Fetch) -> tuple[list[UserOut], str | None]:
        if fetch == FIRST_PAGE and (ahead := self._ahead.pop("page", None)) is not None:
            return ahead.result()
        sort = self.filter.sort
        if fetch.reverse:
            sort = sort[1:] if sort.startswith("-") else f"-{sort}"
        q = {**self.filter.query(), "sort": sort, "limit": fetch.limit or self.page_size}
        if fetch.cursor is not None:
            q["cursor"] = fetch.cursor
        if self.narrows:
            self._counted.wait(COUNT_WAIT_S)
        result = self.services.user_reads.list_rows(
            self.actor, q, total=self._total, skip=fetch.skip
        )
        if fetch.reverse:
            return result.data[::-1], None
        return result.data, result.next_cursor

    def count(self) -> int | None:
        ahead = self._ahead.pop("count", None)
        try:
            if ahead is not None:
                self._total = ahead.result()
            else:
                self._total = self.services.user_reads.count(self.actor, self.filter.query())
        finally:
            self._counted.set()
        return self._total


@dataclass(frozen=True)
class AuditFilter:
    actor_id: str | None = None
    actor_label: str | None = None  # an operator: cli:alice, tui:bob, system:lockout
    target_id: str | None = None
    action: str | None = None
    since: str | None = None  # ISO 8601, already parsed and normalised
    until: str | None = None

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}
