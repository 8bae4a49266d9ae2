"""The console's one door to the core: :class:`ConsoleContext`.

The app makes one and hands it to every screen it opens (``UsersScreen(ctx)``);
screens reach the core only through it. It holds the services, who acts, and
the few core facts the console shows (the database it talks to, the
roles' descriptions, a user's status), and :meth:`ConsoleContext.run`: the one
place a core call runs (in a thread worker) and a failure is mapped by the table
in ``usermgmt.tui.errors``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from textual.dom import DOMNode
from textual.notifications import Notification, Notify
from textual.worker import Worker, get_current_worker

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import DomainError
from usermgmt.core.ports import Backend
from usermgmt.core.schemas import UserOut
from usermgmt.core.status import status_at
from usermgmt.core.vocabulary import ROLE_DESCRIPTIONS
from usermgmt.tui.errors import reaction_for
from usermgmt.tui.paging import Ahead

if TYPE_CHECKING:
    from usermgmt.tui.app import UserMgmtApp

log = logging.getLogger("usermgmt.tui")

T = TypeVar("T")
Job = Callable[[Backend], T]  # one core call, given the backend; runs in a thread

WAITING = "Waiting for the database…"
# A call still running after this long is waiting (a busy database: SQLite's busy
# timeout, a PostgreSQL lock); the console says so until it ends.
WAIT_NOTICE_S = 0.5


class ConsoleContext:
    def __init__(
        self,
        app: UserMgmtApp,
        services: Backend | None,
        *,
        actor: Actor,
        page_size: int,
        search_debounce: float,
        first_page: Ahead | None = None,
        refresh_seconds: float = 0,
    ) -> None:
        """``services`` may come later (:meth:`use`) when the app builds them at start.
        ``refresh_seconds``: how often screens showing live data fetch it again (0: never)."""
        self._app = app
        self._services = services
        self.actor = actor
        self.page_size = page_size
        self.search_debounce = search_debounce
        self.refresh_seconds = refresh_seconds
        self.wait_notice_s = WAIT_NOTICE_S
        self._first_page = first_page

    # ---- what screens read ---------------------------------------------------------

    @property
    def services(self) -> Backend:
        if self._services is None:
            raise RuntimeError("services are not built yet")
        return self._services

    @property
    def built(self) -> bool:
        return self._services is not None

    def use(self, services: Backend) -> None:
        self._services = services

    def now(self) -> datetime:
        """The core's present (its injected clock): what "5m ago" and a lock are measured by."""
        return self.services.clock.now()

    def request_context(self) -> RequestContext:
        """A fresh context for one core call (its request id lands in the audit event)."""
        request_id = f"tui-{self.services.ids.new_uuid().hex[:16]}"
        return RequestContext(request_id=request_id, user_agent="usermgmt-tui")

    def take_first_page(self) -> Ahead | None:
        """The first page fetched ahead, once: later loads of the table fetch afresh."""
        ahead, self._first_page = self._first_page, None
        return ahead

    @property
    def where(self) -> str:
        """The database (password masked) and who acts, or the server and who is logged
        in to it, for the top bar."""
        if not self.built:
            return f"connecting…  ·  {self.actor.label}"
        if self.remote:
            return self.services.where()
        return f"{self.services.where()}  ·  {self.actor.label}"

    @property
    def remote(self) -> bool:
        """Working through a server: the server knows who acts (not ``actor``)."""
        return self.built and hasattr(self.services, "server")

    @property
    def role_descriptions(self) -> dict[str, str]:
        return dict(ROLE_DESCRIPTIONS)

    def status(self, user: UserOut) -> str:
        """One word, by the core's rule: deleted, inactive, locked, unverified, active."""
        return status_at(user, self.now())

    def is_locked(self, user: UserOut) -> bool:
        """Locked now, whatever else the status says (the lock keys follow this)."""
        return user.locked_until is not None and user.locked_until > self.now()

    def ping(self) -> None:
        """Raise ServiceUnavailable unless the database answers (called in a thread)."""
        self.services.health.ping()

    # ---- running core calls --------------------------------------------------------

    def run(
        self,
        owner: DOMNode,
        job: Job[T],
        done: Callable[[T], Any],
        *,
        failed: Callable[[DomainError], bool] | None = None,
        group: str = "core",
        exclusive: bool = True,
        wait_notice: bool = True,
    ) -> Worker:
        """Run ``job(services)`` in a thread worker owned by ``owner``.

        ``done(result)`` runs on the UI thread. A DomainError goes to
        ``failed(error)`` first (a form showing it inline returns True), else
        to :meth:`show_error`. Anything else is a bug: logged, shown in the
        error modal. Results for an owner that is gone are dropped. A call
        still running after ``wait_notice_s`` shows "Waiting for the database…"
        until it ends (``wait_notice=False``: the caller shows its own progress).
        """
        app = self._app
        waiting = _Waiting(app)

        def work_in_thread() -> None:
            worker = get_current_worker()
            try:
                result = job(self.services)
            except DomainError as exc:
                app.call_from_thread(waiting.end)
                if not worker.is_cancelled:
                    app.call_from_thread(self._failed, owner, exc, failed)
                return
            except Exception as exc:  # noqa: BLE001 - the boundary: a bug becomes the error modal
                app.call_from_thread(waiting.end)
                app.call_from_thread(self.show_error, exc)
                return
            app.call_from_thread(waiting.end)
            if not worker.is_cancelled:
                app.call_from_thread(self._done, owner, done, result)

        worker = owner.run_worker(
            work_in_thread, thread=True, group=group, exclusive=exclusive, exit_on_error=False
        )
        if wait_notice:
            app.set_timer(self.wait_notice_s, lambda: waiting.start(worker))
        return worker

    def _attached(self, owner: DOMNode) -> bool:
        return owner is self._app or owner.is_attached

    def _done(self, owner: DOMNode, done: Callable[[Any], Any], result: Any) -> None:
        if self._attached(owner):
            self._app.database_answered()
            done(result)

    def _failed(
        self,
        owner: DOMNode,
        exc: DomainError,
        failed: Callable[[DomainError], bool] | None,
    ) -> None:
        if failed is not None and self._attached(owner) and failed(exc):
            return
        self.show_error(exc)

    def show_error(self, exc: BaseException) -> None:
        """A DomainError as the error table says; anything else is a bug: its traceback
        goes to the log, the error modal shows an incident id (never the traceback)."""
        if isinstance(exc, DomainError):
            if self._app.session_refused(exc):  # remote: the login screen instead
                return
            reaction = reaction_for(exc)
            if reaction.offline:
                self._app.database_gone(exc)
            else:
                message = reaction.message or exc.message
                self._app.notify(message, title=reaction.title, severity=reaction.severity)
            return
        from usermgmt.tui.screens.error import ErrorScreen

        incident = uuid.uuid4().hex[:8]
        log.error("unexpected error (incident %s)", incident, exc_info=exc)
        self._app.push_screen(ErrorScreen(incident, type(exc).__name__))


class _Waiting:
    """The "Waiting for the database…" toast of one call: shown if the call is still
    running when :meth:`start` is due, withdrawn when it ends (UI thread only)."""

    def __init__(self, app: UserMgmtApp) -> None:
        self._app = app
        self._ended = False
        self._note: Notification | None = None

    def start(self, worker: Worker) -> None:
        if self._ended or worker.is_finished:
            return
        # Shown until withdrawn: how long a busy database holds a call is not known here.
        self._note = Notification(WAITING, "Busy", "information", timeout=3600, markup=False)
        self._app.post_message(Notify(self._note))

    def end(self) -> None:
        self._ended = True
        if self._note is not None:
            note, self._note = self._note, None
            # Textual has no public call to take a toast back before its timeout.
            self._app.call_later(self._app._unnotify, note)
