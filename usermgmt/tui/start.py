"""The console's head start: its data is on the way before its UI.

``HeadStart(settings)`` builds the services and fetches the first page of
users (and their count) in threads, and is made before Textual is imported:
connecting, the schema check and the first queries then overlap the import of
Textual and the layout of the first screen, and the home screen's table takes
the rows that are already there (see ``paging.Ahead``) instead of asking once
it is mounted. This module imports the core, never Textual.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from usermgmt.core.config import Settings
from usermgmt.core.context import Actor
from usermgmt.core.services import Services, build_services
from usermgmt.tui.paging import FIRST_PAGE, PAGE_SIZE, Ahead, UserFilter, UserSource

LOGGER = "usermgmt"  # the console's own log and the core's warnings


@contextmanager
def file_logging(settings: Settings) -> Iterator[str]:
    """While the console runs, its log (tracebacks of unexpected errors, the core's
    warnings) goes to tui.log in the data dir, never to the terminal; the logger is
    left as it was afterwards."""
    from usermgmt.core.services.runtime import runtime_options

    options = runtime_options(settings)
    log = logging.getLogger(LOGGER)
    path = Path(options.data_dir) / "tui.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:
        handler, path = logging.NullHandler(), Path("(no log: data dir not writable)")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(options.log_level)
    log.propagate = False
    try:
        yield str(path)
    finally:
        log.removeHandler(handler)
        handler.close()
        log.setLevel(level)
        log.propagate = propagate


class HeadStart:
    """The file log, then the services and the first page on their way; ``close()``
    when the console has ended."""

    def __init__(
        self, settings: Settings, *, os_user: str | None = None, page_size: int = PAGE_SIZE
    ) -> None:
        self._exit = ExitStack()
        # First, so a warning from the threads (say, the database refusing) is logged
        # to the file, not printed over the console's single line of error.
        self.log_path = self._exit.enter_context(file_logging(settings))
        self.actor = Actor.operator("tui", os_user)
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="usermgmt-tui-start")
        self._exit.callback(self._close_services)
        self._exit.callback(pool.shutdown, wait=True)  # runs first: waits for the threads
        self.services = pool.submit(build_services, settings, eager=False)
        flt = UserFilter()

        def source() -> UserSource:
            return UserSource(self.services.result(), self.actor, flt, page_size)

        # The page and the count each wait for the services, then run side by side.
        self.first_page = Ahead(
            actor=self.actor,
            filter=flt,
            page_size=page_size,
            page=pool.submit(lambda: source().fetch(FIRST_PAGE)),
            count=pool.submit(lambda: source().count()),
        )

    def built(self) -> Services:
        """The services (waits for them); raises what building them raised."""
        return self.services.result()

    def _close_services(self) -> None:
        if self.services.exception() is None:
            self.services.result().close()

    def close(self) -> None:
        """Wait for the threads (a user may quit while connecting), close the services,
        end the file log."""
        self._exit.close()
