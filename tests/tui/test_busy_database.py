"""A write that meets a busy database (a lock held elsewhere) says it is waiting, then
"busy — not applied" or succeeds; the console never calls a busy database gone or back."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import create_engine, text

from usermgmt.core.config import load_settings
from usermgmt.core.db import engine as db_engine
from usermgmt.core.services import build_services
from usermgmt.tui.context import WAITING
from usermgmt.tui.screens.lock import LockScreen

from .tui_helpers import run_console, seed_users, settle, toasts, wait_until

BUSY = "Database busy — not applied."


class WriteLock:
    """A write transaction held open from another connection, on either database."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self._release = None

    def hold(self) -> None:
        if self.url.startswith("sqlite"):
            conn = sqlite3.connect(self.url.removeprefix("sqlite:///"), isolation_level=None)
            conn.execute("BEGIN IMMEDIATE")
            self._release = lambda: (conn.rollback(), conn.close())
        else:
            engine = create_engine(self.url)
            conn = engine.connect()
            conn.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            self._release = lambda: (conn.rollback(), conn.close(), engine.dispose())

    def release(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


@pytest.fixture
def busy_services(database_url, monkeypatch):
    """Services whose writes give up on a held lock after about a second."""
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_TIMEOUT_S", 1)
    url = database_url
    if not url.startswith("sqlite"):
        url += ("&" if "?" in url else "?") + "options=-c%20lock_timeout%3D1000"
    services = build_services(load_settings(database_url=url))
    yield services
    services.close()


def test_a_busy_write_waits_then_says_not_applied_or_succeeds(
    busy_services, database_url, make_app
):
    services = busy_services
    (user,) = seed_users(services, 1)
    lock = WriteLock(database_url)
    app = make_app(services, refresh_seconds=0)
    app.ctx.wait_notice_s = 0.1

    def locked() -> bool:
        return services.user_reads.get(app.ctx.actor, str(user.id)).locked_until is not None

    async def scenario(pilot):
        lock.hold()
        try:
            await pilot.press("l")
            assert isinstance(app.screen, LockScreen)
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: WAITING in toasts(app), "the waiting notice")
            await wait_until(pilot, lambda: BUSY in toasts(app), "busy, not applied", 1000)
            assert isinstance(app.screen, LockScreen)  # still open: try again
            assert app.online  # busy is not gone: no "unavailable", so no "back" later
            assert not [n for n in app._notifications if n.message == WAITING]  # withdrawn
        finally:
            lock.release()
        assert not locked()
        # Held again, and let go while the console waits: the write goes through.
        lock.hold()
        try:
            shown = len(toasts(app))
            await pilot.press("ctrl+s")
            await wait_until(pilot, lambda: WAITING in toasts(app)[shown:], "waiting again")
        finally:
            lock.release()
        await settle(pilot)
        assert not isinstance(app.screen, LockScreen)
        assert locked()
        later = toasts(app)[shown:]
        assert BUSY not in later and not toasts(app, "error")
        assert "The database is back." not in toasts(app)

    try:
        run_console(app, scenario)
    finally:
        lock.release()
