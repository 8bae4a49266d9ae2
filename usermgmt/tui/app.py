"""The console application: services, the one place core calls run, errors and reconnects.

``UserMgmtApp(services)`` takes built Services (or a factory that builds them);
``run_tui(settings)`` builds them, runs the app and returns an exit code.
Every core call goes through :meth:`UserMgmtApp.run_core`: a thread worker
that hands the result (or the mapped error) back to the UI thread.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from usermgmt.core.config import Settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import mask_url
from usermgmt.core.errors import DomainError, ServiceUnavailable
from usermgmt.core.services import Services
from usermgmt.core.text import printable, printable_lines
from usermgmt.tui.errors import reaction_for
from usermgmt.tui.formatting import Clock, utc_now
from usermgmt.tui.paging import PAGE_SIZE, Ahead
from usermgmt.tui.widgets.lazy_table import LazyTable

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from usermgmt.tui.start import HeadStart

log = logging.getLogger("usermgmt.tui")

T = TypeVar("T")
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_UNAVAILABLE = 5
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s


class DatabaseBack(Message):
    """Sent to every screen when the database answers again: reload what you show."""


class UserMgmtApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "usermgmt"
    SUB_TITLE = "user management console"

    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True),
    ]

    online: reactive[bool] = reactive(True)

    def __init__(
        self,
        services: Services | Callable[[], Services],
        *,
        clock: Clock | None = None,
        os_user: str | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        search_debounce: float = 0.2,
        page_size: int = PAGE_SIZE,
        retry_start: bool = True,
        first_page: Ahead | None = None,
    ) -> None:
        """``services``: built Services, or a factory called in a worker at start (the
        console shows "connecting…" meanwhile). If the factory finds the database
        unavailable the console retries, or with ``retry_start=False`` ends with
        ``start_error`` set and return code 5. ``first_page``: the home screen's
        first page and count, already on their way (see usermgmt.tui.start)."""
        super().__init__()
        if isinstance(services, Services):
            self._services: Services | None = services
            self._factory: Callable[[], Services] | None = None
        else:
            self._services, self._factory = None, services
        self.clock: Clock = clock or utc_now
        self.actor = Actor.operator("tui", os_user)
        self.retry_delays = tuple(retry_delays) or RETRY_DELAYS
        self.search_debounce = search_debounce
        self.page_size = page_size
        self.retry_start = retry_start
        self.start_error: str | None = None
        self._first_page = first_page
        self._reconnecting = False
        self.log_path = "the log (none configured)"

    # ---- services and context -------------------------------------------------------

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("services are not built yet")
        return self._services

    @property
    def database_label(self) -> str:
        if self._services is None:
            return "connecting…"
        return mask_url(self._services.settings.database_url)

    def request_context(self) -> RequestContext:
        """A fresh context for one core call (its request id lands in the audit event)."""
        return RequestContext(request_id=f"tui-{uuid.uuid4().hex[:16]}", user_agent="usermgmt-tui")

    def now(self):
        return self.clock()

    def take_first_page(self) -> Ahead | None:
        """The first page fetched ahead, once: later loads of the table fetch afresh."""
        ahead, self._first_page = self._first_page, None
        return ahead

    # ---- start -----------------------------------------------------------------------

    def on_mount(self) -> None:
        if self._services is not None:
            self._start()
        else:
            from textual.widgets import Static

            self.screen.mount(Static("Connecting to the database…", id="connecting"))
            self._build_services()

    @work(thread=True, exclusive=True, group="build-services", exit_on_error=False)
    def _build_services(self) -> None:
        assert self._factory is not None
        worker = get_current_worker()
        for delay in self._delays():
            try:
                services = self._factory()
            except ServiceUnavailable as exc:
                if not self.retry_start:
                    self.call_from_thread(self._start_failed, exc.message, EXIT_UNAVAILABLE)
                    return
                self.call_from_thread(self._offline, exc)
                if self._sleep(worker, delay):
                    return
                continue
            except Exception as exc:  # a bug while starting: logged, one line, exit 1
                incident = uuid.uuid4().hex[:8]
                log.error("start failed (incident %s)", incident, exc_info=exc)
                message = f"unexpected error (incident {incident}); details in {self.log_path}"
                self.call_from_thread(self._start_failed, message, EXIT_UNEXPECTED)
                return
            self.call_from_thread(self._built, services)
            return

    def _start_failed(self, message: str, code: int) -> None:
        self.start_error = message
        self.exit(return_code=code)

    def _built(self, services: Services) -> None:
        self._services = services
        self.online = True
        self._start()

    def _start(self) -> None:
        from usermgmt.tui.screens.users import UsersScreen

        self.push_screen(UsersScreen())

    # ---- core calls -----------------------------------------------------------------

    def run_core(
        self,
        owner: DOMNode,
        job: Callable[[], T],
        done: Callable[[T], Any],
        *,
        failed: Callable[[DomainError], bool] | None = None,
        group: str = "core",
        exclusive: bool = True,
    ) -> Worker:
        """Run ``job`` (one core call) in a thread worker owned by ``owner``.

        ``done(result)`` runs on the UI thread. A DomainError goes to
        ``failed(error)`` first (a form showing it inline returns True), else
        to the error table. Anything else is a bug: logged, shown in the
        error modal. Results for an owner that is gone are dropped.
        """

        def work_in_thread() -> None:
            worker = get_current_worker()
            try:
                result = job()
            except DomainError as exc:
                if not worker.is_cancelled:
                    self.call_from_thread(self._core_failed, owner, exc, failed)
                return
            except Exception as exc:  # noqa: BLE001 - the boundary: a bug becomes the error modal
                self.call_from_thread(self.unexpected_error, exc)
                return
            if not worker.is_cancelled:
                self.call_from_thread(self._core_done, owner, done, result)

        return owner.run_worker(
            work_in_thread, thread=True, group=group, exclusive=exclusive, exit_on_error=False
        )

    def _core_done(self, owner: DOMNode, done: Callable[[Any], Any], result: Any) -> None:
        if owner is self or owner.is_attached:
            if not self.online:
                self._back_online()
            done(result)

    def _core_failed(
        self,
        owner: DOMNode,
        exc: DomainError,
        failed: Callable[[DomainError], bool] | None,
    ) -> None:
        if failed is not None and (owner is self or owner.is_attached) and failed(exc):
            return
        self.show_domain_error(exc)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Notifications are plain text (they quote emails, names, error messages), with
        control characters shown as escapes; ``markup`` is accepted and ignored."""
        kwargs = {} if timeout is None else {"timeout": timeout}
        super().notify(
            printable_lines(message),
            title=printable(title),
            severity=severity,
            markup=False,
            **kwargs,
        )

    def show_domain_error(self, exc: DomainError) -> None:
        reaction = reaction_for(exc)
        if reaction.offline:
            self._offline(exc)
            return
        self.notify(exc.message, title=reaction.title, severity=reaction.severity)

    def unexpected_error(self, exc: BaseException) -> None:
        """A bug: log the traceback, show an incident id (never the traceback itself)."""
        from usermgmt.tui.screens.error import ErrorScreen

        incident = uuid.uuid4().hex[:8]
        log.error("unexpected error (incident %s)", incident, exc_info=exc)
        self.push_screen(ErrorScreen(incident, type(exc).__name__))

    def on_lazy_table_load_failed(self, message: LazyTable.LoadFailed) -> None:
        if isinstance(message.error, DomainError):
            self.show_domain_error(message.error)
        else:
            self.unexpected_error(message.error)

    # ---- the database going away and coming back ----------------------------------

    def _offline(self, exc: DomainError) -> None:
        if self.online:
            self.online = False
            self.notify(
                f"{exc.message}. Retrying in the background; nothing you see is lost.",
                title="Database unavailable",
                severity="error",
                timeout=8,
            )
        self._pause_tables(True)
        if self._services is not None and not self._reconnecting:
            self._reconnecting = True
            self._reconnect()

    def _delays(self) -> Iterable[float]:
        yield from self.retry_delays
        while True:
            yield self.retry_delays[-1]

    @staticmethod
    def _sleep(worker: Worker, seconds: float) -> bool:
        """Sleep in small steps; True if the worker was cancelled meanwhile."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if worker.is_cancelled:
                return True
            time.sleep(min(0.05, max(deadline - time.monotonic(), 0)))
        return worker.is_cancelled

    @work(thread=True, exclusive=True, group="reconnect", exit_on_error=False)
    def _reconnect(self) -> None:
        worker = get_current_worker()
        for delay in self._delays():
            if self._sleep(worker, delay):
                return
            try:
                self.services.db.ping()
            except ServiceUnavailable:
                continue
            self.call_from_thread(self._back_online)
            return

    def _back_online(self) -> None:
        self._reconnecting = False
        if self.online:
            return
        self.online = True
        self.notify("The database is back.", title="Reconnected", severity="information")
        self._pause_tables(False)
        for screen in self.screen_stack:
            screen.post_message(DatabaseBack())

    def _pause_tables(self, paused: bool) -> None:
        for screen in self.screen_stack:
            for table in screen.query(LazyTable):
                table.paused = paused

    # ---- keys, help and the command palette ----------------------------------------

    def action_help(self) -> None:
        from usermgmt.tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        commands = getattr(screen, "palette_commands", None)
        if commands is not None:
            yield from commands()
        yield SystemCommand("Help", "Show every key of this screen", self.action_help)
        yield from super().get_system_commands(screen)

    def on_unmount(self) -> None:
        self._reconnecting = False

    # ---- bugs in the UI thread ---------------------------------------------------------

    def _handle_exception(self, error: Exception) -> None:
        """A bug in a handler ends the app (Textual's rule); the traceback goes to the log."""
        self._incident = uuid.uuid4().hex[:8]
        log.error("fatal error (incident %s)", self._incident, exc_info=error)
        super()._handle_exception(error)

    def _fatal_error(self) -> None:
        """One line on the terminal instead of Textual's traceback, which shows locals
        (a password typed into a form can be one)."""
        self.bell()
        incident = getattr(self, "_incident", "?")
        self._exit_renderables.append(
            f"usermgmt tui: unexpected error (incident {incident}); details in {self.log_path}"
        )
        self._close_messages_no_wait()


def run_tui(
    settings: Settings, *, headless: bool = False, head_start: HeadStart | None = None
) -> int:
    """Run the console; return the exit code (5: database unavailable or schema behind).

    The services are built (connect, check the schema) and the first page of
    users fetched in threads while the console starts (``head_start``, made
    before Textual was imported, or one made here); a failure ends the console
    with one line on stderr, as if it had never started. The log goes to
    tui.log meanwhile (see usermgmt.tui.start.file_logging).
    """

    from usermgmt.tui.start import HeadStart

    start = head_start or HeadStart(settings)
    try:
        app = UserMgmtApp(start.built, retry_start=False, first_page=start.first_page)
        app.log_path = start.log_path
        app.run(headless=headless)
    finally:
        start.close()  # waits if the user quit while connecting; ends the file log
    if app.start_error:
        print(f"usermgmt tui: {app.start_error}", file=sys.stderr)
    return app.return_code or EXIT_OK


if __name__ == "__main__":  # pragma: no cover - manual runs: python -m usermgmt.tui.app
    from usermgmt.core.config import load_settings

    sys.exit(run_tui(load_settings()))
