"""The audit events a console table shows: one order (newest or oldest first), one
filter, pinned at the chain's head when it was made.

Pinned, the rows do not move under the operator: events written later are not
shown until the screen makes a new source (its live refresh), which knows how many
arrived. The sequence numbers of the whole log are 1..head without gaps (the chain
is verified for that), so without a filter the count is the head and any row is one
keyset query away (``seq < head - n``), the last page included. With a filter the
count is unknown; rows skipped over are walked by keyset, a thousand at a time.
"""

from __future__ import annotations

import threading
from typing import Any

from usermgmt.core.context import Actor
from usermgmt.core.errors import AuditChainBroken
from usermgmt.core.ports import Backend
from usermgmt.core.schemas import AuditEventOut
from usermgmt.tui.paging import PAGE_SIZE, AuditFilter, Fetch

WALK = 1000  # the core's largest audit page


class AuditSource:
    can_offset = True
    can_reverse = True  # used by the page cache only with an exact count: unfiltered

    def __init__(
        self,
        services: Backend,
        actor: Actor,
        flt: AuditFilter,
        page_size: int = PAGE_SIZE,
        *,
        oldest: bool = False,
        top: int | None = None,
    ) -> None:
        """``top``: the newest seq to show (None: the head, read on first use)."""
        self.services = services
        self.actor = actor
        self.filter = flt
        self.page_size = page_size
        self.oldest = oldest
        self._top = top
        self._lock = threading.Lock()

    @property
    def pinned(self) -> int | None:
        """The pin if already read (never queries: safe on the UI thread)."""
        return self._top

    @property
    def order(self) -> str:
        return "oldest" if self.oldest else "newest"

    def top(self) -> int:
        """The pin: the head's seq when first asked (0: an empty log or no head row)."""
        with self._lock:
            if self._top is None:
                try:
                    self._top = self.services.audit.head().seq
                except AuditChainBroken:  # the head row is gone: show what is there
                    self._top = 0
            return self._top

    def count(self) -> int | None:
        return None if self.filter.query() else self.top()

    def fetch(self, fetch: Fetch) -> tuple[list[AuditEventOut], str | None]:
        oldest = self.oldest != fetch.reverse  # the order this query reads in
        limit = fetch.limit or self.page_size
        start = self._start(oldest) if fetch.cursor is None else int(fetch.cursor)
        start = self._skip(oldest, start, fetch.skip)
        if start is None:
            return [], None
        rows, more = self._read(oldest, start, limit)
        if fetch.reverse:
            return rows[::-1], None
        return rows, str(rows[-1].seq) if more and rows else None

    def newer(self, than: int, upto: int) -> list[AuditEventOut]:
        """The events matching the filter with ``than`` < seq <= ``upto``, oldest first."""
        found: list[AuditEventOut] = []
        start: int | None = than
        while start is not None:
            page = self._query("oldest", start, WALK)
            found.extend(e for e in page.data if e.seq <= upto)
            last = page.data[-1].seq if page.data else upto
            start = int(page.meta.next_cursor) if page.meta.next_cursor and last < upto else None
        return found

    # ---- keyset ----------------------------------------------------------------------

    def _start(self, oldest: bool) -> int:
        """The cursor before the first row: above the pin newest first, 0 oldest first."""
        return 0 if oldest else self.top() + 1

    def _skip(self, oldest: bool, start: int, skip: int) -> int | None:
        """The cursor ``skip`` rows on from ``start`` (None: past the end)."""
        if not skip:
            return start
        if not self.filter.query():  # seq is 1..head without gaps: arithmetic
            return start + skip if oldest else max(start - skip, 1)
        cursor: int | None = start
        while skip and cursor is not None:
            page = self._query("oldest" if oldest else "newest", cursor, min(skip, WALK))
            if not page.data:
                return None
            skip -= len(page.data)
            cursor = page.data[-1].seq if page.meta.next_cursor or not skip else None
        return cursor

    def _read(self, oldest: bool, start: int, limit: int) -> tuple[list[AuditEventOut], bool]:
        page = self._query("oldest" if oldest else "newest", start, limit)
        rows, more = page.data, page.meta.next_cursor is not None
        top = self.top()
        if oldest and rows and rows[-1].seq > top:  # written after the pin: not yet
            rows, more = [e for e in rows if e.seq <= top], False
        return rows, more

    def _query(self, order: str, cursor: int, limit: int) -> Any:
        q: dict[str, Any] = {**self.filter.query(), "order": order, "limit": limit}
        if cursor > 0 or order == "newest":
            q["cursor"] = str(cursor)
        return self.services.audit.query(self.actor, q)
