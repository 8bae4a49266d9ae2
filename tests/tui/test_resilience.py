"""The console survives the database going away and coming back, and bugs."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import uuid

import pgserver
import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.errors import DatabaseUnavailable
from usermgmt.core.services import build_services
from usermgmt.tui.app import UserMgmtApp, run_tui
from usermgmt.tui.screens.error import ErrorScreen
from usermgmt.tui.screens.lock import LockScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from .tui_helpers import run_console, seed_users, settle, text_of, toasts, wait_until


class Switch:
    down = False

    def check(self) -> None:
        if self.down:
            raise DatabaseUnavailable()


class _Flaky:
    """Proxy whose methods raise DatabaseUnavailable while the switch is down."""

    def __init__(self, real, switch: Switch) -> None:
        self._real, self._switch = real, switch

    def __getattr__(self, name):
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._switch.check()
            return attr(*args, **kwargs)

        return call


def flaky(services, switch: Switch):
    """The real services, with users, audit and health (the ping) going through the switch."""
    return dataclasses.replace(
        services,
        users=_Flaky(services.users, switch),
        user_reads=_Flaky(services.user_reads, switch),
        audit=_Flaky(services.audit, switch),
        health=_Flaky(services.health, switch),
    )


def test_database_gone_and_back(services, make_app):
    seed_users(services, 3)
    switch = Switch()

    app = make_app(flaky(services, switch))

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        assert table.row_count == 3
        switch.down = True
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.online, "offline")
        assert toasts(app, "error") == [
            "Database is unavailable. Reconnecting in the background; what you see stays. "
            "Nothing is retried: repeat an action once it answers."
        ]
        assert "database unavailable" in text_of(app.screen.query_one("#top-state"))
        # The screen stays usable: keys work, an action fails with the toast, no crash.
        await pilot.press("down", "pagedown", "l")
        assert isinstance(app.screen, LockScreen)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not app.screen.busy, "lock attempt")
        assert isinstance(app.screen, LockScreen)  # still open, try again later
        await pilot.press("escape")
        assert len(toasts(app, "error")) == 1  # one toast per outage, not per call
        switch.down = False
        await wait_until(pilot, lambda: app.online, "reconnect")
        await settle(pilot)
        assert "The database is back." in toasts(app)
        assert table.row_count == 3 and table.cursor_value is not None
        assert "connected" in text_of(app.screen.query_one("#top-state"))

    run_console(app, scenario)


@pytest.mark.postgres
def test_postgres_restart(restartable_pg, tmp_path):
    """A real PostgreSQL stopped under the console, then started on the same port and data."""
    cluster = restartable_pg
    pgserver.create_database(cluster.admin_url, "tui")
    services = build_services(
        load_settings(database_url=pgserver.url_for(cluster.admin_url, "tui"))
    )
    seed_users(services, 3)

    app = UserMgmtApp(services, os_user="tester", retry_delays=(0.1,))

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        assert table.row_count == 3
        cluster.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.online, "offline", rounds=1000)
        await pilot.press("down", "up")
        cluster.resume()
        await wait_until(pilot, lambda: app.online, "reconnect", rounds=2000)
        await settle(pilot)
        assert table.row_count == 3 and table.cursor_value is not None
        await pilot.press("l", "ctrl+s")  # writes work again
        await settle(pilot)
        assert table.cursor_value.locked_until is not None

    try:
        run_console(app, scenario)
    finally:
        services.close()


def test_unexpected_error_is_a_modal_without_traceback(
    ui_services, make_ui_app, caplog, monkeypatch
):
    seed_users(ui_services, 1)

    app = make_ui_app()

    async def scenario(pilot):

        def bug(*_a, **_k):
            raise ZeroDivisionError("division by zero")

        monkeypatch.setattr(ui_services.user_reads, "get", bug)
        with caplog.at_level(logging.ERROR, logger="usermgmt.tui"):
            await pilot.press("enter")
            await settle(pilot)
        assert isinstance(app.screen, ErrorScreen)
        body = text_of(app.screen.query_one(".dialog-body"))
        assert "ZeroDivisionError" in body and "Traceback" not in body
        assert f"incident {app.screen.incident}" in caplog.text
        assert "Traceback" in caplog.text  # the details go to the log
        await pilot.press("escape")
        assert not isinstance(app.screen, ErrorScreen)

    run_console(app, scenario)


def test_start_up_without_database_prints_one_line_and_exits_5(capsys, tmp_path):
    settings = load_settings(database_url=f"postgresql+psycopg://nobody@127.0.0.1:1/{uuid.uuid4()}")
    assert run_tui(settings, headless=True) == 5
    err = capsys.readouterr().err
    assert err == "usermgmt tui: Database is unavailable\n"
    for name in ("usermgmt", "usermgmt.tui"):  # its file log is gone with the console
        assert logging.getLogger(name).propagate and not logging.getLogger(name).handlers
    assert (tmp_path / "data" / "tui.log").exists()


def test_usermgmt_tui_without_database_prints_only_its_line(tmp_path):
    """The head start connects before Textual runs: the core's warning about the refused
    connection goes to tui.log, not to the terminal next to the one line."""
    url = f"postgresql+psycopg://nobody@127.0.0.1:1/{uuid.uuid4()}"
    env = {**os.environ, "USERMGMT_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "usermgmt", "--database-url", url, "tui"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 5
    assert proc.stderr.endswith("usermgmt tui: Database is unavailable\n")
    assert "database error" not in proc.stderr  # Textual's own escapes may precede the line
    assert "database error mapped" in (tmp_path / "data" / "tui.log").read_text()


def test_start_up_with_the_schema_behind_exits_5(sqlite_template, tmp_path, capsys):
    import shutil

    from usermgmt.core import migrate
    from usermgmt.core.db import Database

    path = tmp_path / "old.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    migrate.downgrade(db, "0001")
    db.dispose()
    assert run_tui(load_settings(database_url=f"sqlite:///{path}"), headless=True) == 5
    err = capsys.readouterr().err
    assert err.startswith("usermgmt tui: Database schema is at 0001") and err.count("\n") == 1


def test_a_bug_in_the_ui_thread_ends_with_one_line_not_a_traceback(
    ui_services, make_ui_app, caplog, capsys
):
    seed_users(ui_services, 1)
    app = make_ui_app()

    async def scenario(pilot):
        secret = "Corr3ct-Horse-Battery"  # a local the traceback would have shown

        def broken() -> None:
            raise RuntimeError(f"bug near {len(secret)}")

        app.screen.action_refresh = broken
        with caplog.at_level(logging.ERROR, logger="usermgmt.tui"):
            await pilot.press("ctrl+r")
            await pilot.pause()

    with pytest.raises(RuntimeError):
        run_console(app, scenario)
    assert app.return_code == 1
    printed = " ".join(capsys.readouterr().err.split())  # one message, wrapped to the width
    assert printed.startswith("usermgmt tui: unexpected error (incident ")
    assert printed.endswith("details in the log (none configured)")
    assert "Corr3ct" not in printed and "Traceback" not in printed
    assert "Traceback" in caplog.text


def test_a_services_factory_is_retried_until_the_database_answers(ui_services):
    seed_users(ui_services, 2)
    attempts = []

    def factory():
        attempts.append(1)
        if len(attempts) < 3:
            raise DatabaseUnavailable()
        return ui_services

    app = UserMgmtApp(factory, os_user="tester", retry_delays=(0.01,))

    async def scenario(pilot):
        await wait_until(pilot, lambda: app.screen.query("#users"), "the users screen")
        await settle(pilot)
        assert app.online and len(attempts) == 3
        assert app.screen.query_one("#users", LazyTable).row_count == 2
        assert toasts(app, "error") == [
            "Database is unavailable. Reconnecting in the background; what you see stays. "
            "Nothing is retried: repeat an action once it answers."
        ]

    run_console(app, scenario, settled=False)
