"""The remote console's head start: its first page is on the way before its UI.

As embedded (``usermgmt.tui.start``), the first page of users and their count
are asked for in threads before Textual is imported, so the server answers
while the console is being imported and laid out, and the home screen's table
takes the rows that are already there. The backend is connected (and ``me``
checked) by the caller. This module imports neither Textual nor the database
layer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from usermgmt.core.context import Actor
from usermgmt.core.ports import Backend
from usermgmt.tui.paging import FIRST_PAGE, PAGE_SIZE, Ahead, UserFilter, UserSource


class RemoteHeadStart:
    """The first page and count through ``backend``; ``close()`` when the console ends."""

    def __init__(
        self, backend: Backend, *, os_user: str | None = None, page_size: int = PAGE_SIZE
    ) -> None:
        actor = Actor.operator("tui", os_user)
        flt = UserFilter()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="usermgmt-tui-start")
        source = UserSource(backend, actor, flt, page_size)
        self.first_page = Ahead(
            actor=actor,
            filter=flt,
            page_size=page_size,
            page=self._pool.submit(source.fetch, FIRST_PAGE),
            count=self._pool.submit(source.count),
        )

    def close(self) -> None:
        """Wait for the threads (a user may quit before the first page came)."""
        self._pool.shutdown(wait=True)
