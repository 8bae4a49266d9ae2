"""The console application: start, the database going away and coming back, bugs.

``UserMgmtApp(services)`` takes built Services (or a factory that builds them);
``run_tui(settings)`` builds them, runs the app and returns an exit code. The
app makes one :class:`~usermgmt.tui.context.ConsoleContext` (``app.ctx``) and
hands it to the first screen; every core call goes through ``ctx.run``.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from usermgmt.core.config import Settings
from usermgmt.core.context import Actor
from usermgmt.core.errors import DomainError, ServiceUnavailable
from usermgmt.core.ports import Backend
from usermgmt.core.text import printable, printable_lines
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.no_color import forget_empty_no_color
from usermgmt.tui.paging import PAGE_SIZE, Ahead
from usermgmt.tui.widgets.lazy_table import LazyTable

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from usermgmt.tui.start import HeadStart

log = logging.getLogger("usermgmt.tui")

Opening = Callable[["UserMgmtApp", Callable[[], None]], None]

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_UNAVAILABLE = 5
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)  # then every 15 s


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
        services: Backend | Callable[[], Backend],
        *,
        os_user: str | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        search_debounce: float = 0.2,
        page_size: int = PAGE_SIZE,
        retry_start: bool = True,
        first_page: Ahead | None = None,
        opening: Opening | None = None,
        refresh_seconds: float = 0,
    ) -> None:
        """``services``: built Services, or a factory called in a worker at start (the
        console shows "connecting…" meanwhile). If the factory finds the database
        unavailable the console retries, or with ``retry_start=False`` ends with
        ``start_error`` set and return code 5. ``first_page``: the home screen's
        first page and count, already on their way (see usermgmt.tui.start). ``opening``:
        screens before the home screen (the remote console's sign-in or enrolment, see
        usermgmt.tui.screens.mfa_login), given the app and a callable that opens home."""
        forget_empty_no_color()  # before Textual reads it
        super().__init__()
        # A factory is called; a backend (Services, RemoteBackend) is not.
        built = None if callable(services) else services
        self._factory: Callable[[], Backend] | None = services if callable(services) else None
        self.ctx = ConsoleContext(
            self,
            built,
            actor=Actor.operator("tui", os_user),
            page_size=page_size,
            search_debounce=search_debounce,
            first_page=first_page,
            refresh_seconds=refresh_seconds,
        )
        self.retry_delays = tuple(retry_delays) or RETRY_DELAYS
        self.retry_start = retry_start
        self.start_error: str | None = None
        self._reconnecting = False
        self.log_path = "the log (none configured)"
        self._opening = opening

    # ---- start -----------------------------------------------------------------------

    def on_mount(self) -> None:
        if self.ctx.built:
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
                self.call_from_thread(self.database_gone, exc)
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

    def _built(self, services: Backend) -> None:
        self.ctx.use(services)
        self.online = True
        self._start()

    def _start(self) -> None:
        from usermgmt.tui.screens.users import UsersScreen

        def home() -> None:
            self.push_screen(UsersScreen(self.ctx))

        if self._opening is not None:
            self._opening(self, home)
        else:
            home()

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

    def session_refused(self, exc: DomainError) -> bool:
        """A remote session refused in use: sign in again, or enrol a second factor
        (tui/screens/mfa_login.py); True when that takes the error."""
        from usermgmt.tui.screens.mfa_login import session_refused

        return session_refused(self, self.ctx, exc)

    def on_lazy_table_load_failed(self, message: LazyTable.LoadFailed) -> None:
        self.ctx.show_error(message.error)

    # ---- the database going away and coming back ----------------------------------

    def database_gone(self, exc: DomainError) -> None:
        """A call found the database unavailable: say so once, keep what is on screen,
        ping it in the background until it answers."""
        if self.online:
            self.online = False
            self.notify(
                f"{exc.message}. Reconnecting in the background; what you see stays. "
                "Nothing is retried: repeat an action once it answers.",
                title="Database unavailable",
                severity="error",
                timeout=8,
            )
        self._pause_tables(True)
        if self.ctx.built and not self._reconnecting:
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
                self.ctx.ping()
            except ServiceUnavailable:
                continue
            self.call_from_thread(self.database_answered)
            return

    def database_answered(self) -> None:
        """A call or the ping got an answer: if the database was away, it is back."""
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
        if not getattr(screen, "signing_in", False):
            from usermgmt.tui.screens.mfa_manage import palette_commands as mfa_commands

            yield from mfa_commands(self, self.ctx)
        yield SystemCommand("Help", "Show every key of this screen", self.action_help)
        yield from super().get_system_commands(screen)

    def on_unmount(self) -> None:
        self._reconnecting = False

    # ---- bugs in the UI thread ---------------------------------------------------------
    # Textual has no public hook for an exception a handler let through (its issues
    # #2818 and #5325): these two private methods are the only ones overridden.

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
        line = f"usermgmt tui: unexpected error (incident {incident}); details in {self.log_path}"
        self.panic(Text(line))  # Text: a path is not markup


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

    from usermgmt.core.services.runtime import runtime_options
    from usermgmt.tui.start import HeadStart

    start = head_start or HeadStart(settings)
    try:
        app = UserMgmtApp(
            start.built,
            retry_start=False,
            first_page=start.first_page,
            refresh_seconds=runtime_options(settings).tui_refresh_seconds,
        )
        app.log_path = start.log_path
        app.run(headless=headless)
    finally:
        start.close()  # waits if the user quit while connecting; ends the file log
    if app.start_error:
        print(f"usermgmt tui: {app.start_error}", file=sys.stderr)
    return app.return_code or EXIT_OK


def run_tui_remote(
    backend: Backend,
    *,
    headless: bool = False,
    first_page: Ahead | None = None,
    opening: Opening | None = None,
) -> int:
    """Run the console through a served API as the person logged in (remote mode).

    The title names the server and the person; the server holds them to the
    permission matrix, and a refused action says so (see usermgmt.tui.errors).
    The log goes to tui.log in the data directory, as embedded. ``first_page``:
    the home screen's first page and count, already on their way (see
    usermgmt.tui.remote_start). ``opening``: the sign-in or enrolment the session
    needs first (usermgmt.tui.screens.mfa_login.opening).
    """
    from usermgmt.core.config import load_settings
    from usermgmt.core.services.runtime import runtime_options
    from usermgmt.tui.start import file_logging

    settings = load_settings()
    with file_logging(settings) as log_path:
        app = UserMgmtApp(
            backend,
            retry_start=False,
            first_page=first_page,
            opening=opening,
            refresh_seconds=runtime_options(settings).tui_refresh_seconds,
        )
        app.log_path = log_path
        app.title = f"usermgmt · {backend.server}"
        app.sub_title = backend.where()
        app.run(headless=headless)
    return app.return_code or EXIT_OK


if __name__ == "__main__":  # pragma: no cover - manual runs: python -m usermgmt.tui.app
    from usermgmt.core.config import load_settings

    sys.exit(run_tui(load_settings()))
