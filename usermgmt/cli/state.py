"""Per-invocation state: global options, settings, services and the operator actor.

One :class:`CliState` is made for each run of the command line (see
``errors.UsermgmtGroup.main``) and closed when it ends. Everything heavy is
built on first use, so ``--help`` and commands that need no database never
import the core's database layer.

This is the CLI's composition root: it loads the settings and builds the
services from them. Commands use the services alone; ``serve`` and ``tui``
hand the settings on to the server and the console, which build their own.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from usermgmt.core.errors import ConfigurationError, DatabaseUnavailable

if TYPE_CHECKING:
    from usermgmt.client.factory import RemoteTarget
    from usermgmt.core.config import Settings
    from usermgmt.core.context import Actor, RequestContext
    from usermgmt.core.ports import Backend
    from usermgmt.core.services import Services

DATABASE_URL_SETTING = "USERMGMT_DATABASE_URL"
_UNSET: Any = object()


class CliState:
    def __init__(self) -> None:
        self.database_url: str | None = None
        self.context: str | None = None
        self.debug = False
        # The -o/--output of the running command, so errors can follow it.
        self.output: str | None = None
        self._settings: Settings | None = None
        self._services: Services | None = None
        self._schema_checked = False
        self._actor: Actor | None = None
        self._request_context: RequestContext | None = None
        self._target: RemoteTarget | None = _UNSET
        self._remote: Any = None

    # ---- the backend: embedded or remote ------------------------------------

    def remote_target(self) -> RemoteTarget | None:
        """The server the options and environment name, or None (embedded)."""
        if self._target is _UNSET:
            from usermgmt.client.factory import choose

            self._target = choose(self.context, self.database_url)
        return self._target

    def backend(self) -> Backend:
        """What every command works through: the core's services, or a served API."""
        target = self.remote_target()
        if target is None:
            return self.services()
        if self._remote is None:
            from usermgmt.client.factory import connect

            self._remote = connect(target)
        return self._remote

    def refuse_remote(self, what: str) -> None:
        """``what`` needs the database itself: a usage error in remote mode."""
        target = self.remote_target()
        if target is not None:
            from usermgmt.cli.errors import usage_error

            where = f"context {target.context}, " if target.context else ""
            raise usage_error(
                f"{what} works on a database, not through a server ({where}server "
                f"{target.server}): run it where the database is, with --database-url"
            )

    # ---- settings and services -------------------------------------------

    def settings(self) -> Settings:
        """The effective settings; a bad database URL is 'database unavailable' (exit 5)."""
        if self._settings is None:
            from usermgmt.core.config import load_settings

            self.refuse_remote("This command")

            try:
                self._settings = load_settings(database_url=self.database_url)
            except ConfigurationError as exc:
                problems = exc.field_errors.get(DATABASE_URL_SETTING)
                if problems:
                    where = "--database-url" if self.database_url else DATABASE_URL_SETTING
                    reasons = "; ".join(p.removeprefix("Value error, ") for p in problems)
                    raise DatabaseUnavailable(f"Bad database URL ({where}): {reasons}") from None
                raise
        return self._settings

    @property
    def overrides(self) -> set[str]:
        """Settings given on the command line (for `usermgmt info`)."""
        return {"database_url"} if self.database_url else set()

    def services(self, *, check_schema: bool = True) -> Services:
        """The core services; an empty database gets its schema, one behind is refused.

        ``check_schema=False`` (``info`` and the ``db`` commands) skips that check,
        and a bad mail setting is left to the mail commands.
        """
        if self._services is None:
            from usermgmt.core.services import build_services

            self._services = build_services(
                self.settings(), eager=False, ensure_schema=check_schema, check_mail=check_schema
            )
            self._schema_checked = check_schema
        elif check_schema and not self._schema_checked:
            self._services.migrations.ensure()
            self._schema_checked = True
        return self._services

    def explain_unavailable(self, message: str, *, unreachable: bool) -> str:
        """``message`` naming the database (password masked) and, if unreachable, the fix."""
        if self._settings is None:  # a bad URL, or a server: the message says which
            return message
        from usermgmt.core.services.runtime import runtime_options

        options = runtime_options(self._settings)
        message = f"{message.rstrip('.')} (database: {options.database})"
        if unreachable:
            hint = "check --database-url or USERMGMT_DATABASE_URL"
            if options.backend != "sqlite":
                hint += " and that the server is running"
            message += f"; {hint}"
        return message

    # ---- who acts ----------------------------------------------------------

    def actor(self) -> Actor:
        if self._actor is None:
            from usermgmt.core.context import Actor

            self._actor = Actor.operator("cli")
        return self._actor

    def request_context(self) -> RequestContext:
        """One context per invocation: every audit event of one run shares its id."""
        if self._request_context is None:
            from usermgmt import __version__
            from usermgmt.core.context import RequestContext

            self._request_context = RequestContext(
                ip=None,
                request_id=f"cli-{uuid.uuid4().hex[:16]}",
                user_agent=f"usermgmt-cli/{__version__}",
            )
        return self._request_context

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()
            self._remote = None
        if self._services is not None:
            self._services.close()
            self._services = None


_current: ContextVar[CliState | None] = ContextVar("usermgmt_cli_state", default=None)


def begin() -> tuple[CliState, Any]:
    """Make the state of a new invocation current; returns it and a reset token."""
    state = CliState()
    return state, _current.set(state)


def end(token: Any) -> None:
    state = _current.get()
    try:
        if state is not None:
            state.close()
    finally:
        _current.reset(token)


def current() -> CliState:
    state = _current.get()
    if state is None:  # a command called outside `usermgmt` (e.g. from Python)
        state, _token = begin()
    return state


def services(*, check_schema: bool = True) -> Services:
    return current().services(check_schema=check_schema)


def backend() -> Backend:
    return current().backend()


def actor() -> Actor:
    return current().actor()


def request_context() -> RequestContext:
    return current().request_context()
