"""Lazy, bounded paging over a result of any size.

A :class:`PageCache` keeps at most ``max_pages`` pages of rows (least recently
used go first), so the memory held never depends on the size of the table.
A page is fetched by keyset cursor when the page before it has been seen (its
``next_cursor`` is kept, a few hundred bytes per page) and otherwise, when the
source allows it, by offset — a jump costs one query, not one per page.

Sources run in worker threads; the cache itself is only touched on the UI
thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from usermgmt.core.context import Actor
from usermgmt.core.schemas import AuditEventOut, UserOut
from usermgmt.core.services import Services

R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

PAGE_SIZE = 100  # the core's largest page


class Source(Protocol[R_co]):
    """Where the rows of one query (filters + sort) come from."""

    page_size: int
    can_offset: bool

    def fetch(self, page: int, cursor: str | None) -> tuple[list[R_co], str | None]:
        """Page ``page`` (0-based): by ``cursor`` if given, else by offset."""
        ...

    def count(self) -> int | None:
        """How many rows match, or None if the source cannot count."""
        ...


@dataclass(frozen=True)
class Fetch:
    """How to fetch one page: by keyset cursor, or (cursor None) by offset."""

    page: int
    cursor: str | None


@dataclass
class PageCache(Generic[R]):
    page_size: int = PAGE_SIZE
    can_offset: bool = True
    max_pages: int = 12
    max_cursors: int | None = 20_000
    pages: OrderedDict[int, list[R]] = field(default_factory=OrderedDict)
    cursors: OrderedDict[int, str] = field(default_factory=OrderedDict)
    total: int | None = None  # from a COUNT, if any
    end: int | None = None  # exact row count, once the last page was seen
    extent: int = 0  # rows known to exist

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
        return page in self.pages

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
        if self.can_offset:
            return Fetch(page, None)
        return None

    # ---- writing -------------------------------------------------------------

    def store(
        self, page: int, rows: list[R], next_cursor: str | None, keep: frozenset[int] = frozenset()
    ) -> None:
        """Keep ``rows`` as ``page``, evicting the least recently used pages not in ``keep``."""
        self.pages[page] = rows
        self.pages.move_to_end(page)
        if len(self.pages) > self.max_pages:
            for old in [p for p in self.pages if p not in keep and p != page]:
                if len(self.pages) <= self.max_pages:
                    break
                del self.pages[old]
        if next_cursor is not None:
            self.cursors[page + 1] = next_cursor
            self.cursors.move_to_end(page + 1)
            if self.max_cursors is not None:
                while len(self.cursors) > self.max_cursors:
                    self.cursors.popitem(last=False)
        start = page * self.page_size
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
        """Forget the rows (they changed); keep the cursors, which stay valid positions."""
        self.pages.clear()
        self.end = None
        self.total = None


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


class UserSource:
    """Users matching a filter, through ``services.users.list_rows`` / ``count``."""

    can_offset = True

    def __init__(
        self, services: Services, actor: Actor, flt: UserFilter, page_size: int = PAGE_SIZE
    ) -> None:
        self.services = services
        self.actor = actor
        self.filter = flt
        self.page_size = page_size

    def fetch(self, page: int, cursor: str | None) -> tuple[list[UserOut], str | None]:
        q = {**self.filter.query(), "limit": self.page_size}
        if cursor is not None:
            q["cursor"] = cursor
        else:
            q["page"] = page + 1
        result = self.services.users.list_rows(self.actor, q)
        return result.data, result.next_cursor

    def count(self) -> int | None:
        return self.services.users.count(self.actor, self.filter.query())


@dataclass(frozen=True)
class AuditFilter:
    actor_id: str | None = None
    target_id: str | None = None
    action: str | None = None
    since: str | None = None  # ISO 8601, already parsed and normalised
    until: str | None = None

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v}


class AuditSource:
    """Audit events, newest first, through ``services.audit.query`` (keyset by seq only)."""

    can_offset = False

    def __init__(
        self,
        services: Services,
        actor: Actor,
        flt: AuditFilter | Mapping[str, Any],
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.services = services
        self.actor = actor
        self.filter = flt if isinstance(flt, AuditFilter) else AuditFilter(**flt)
        self.page_size = page_size

    def fetch(self, page: int, cursor: str | None) -> tuple[list[AuditEventOut], str | None]:
        q = {**self.filter.query(), "limit": self.page_size}
        if cursor is not None:
            q["cursor"] = cursor
        result = self.services.audit.query(self.actor, q)
        return result.data, result.meta.next_cursor

    def count(self) -> int | None:
        return None
