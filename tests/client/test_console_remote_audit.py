"""The audit screen through a server: verification is one request, so the console shows
an indeterminate wait, and escape stops waiting (the server may still finish)."""

from __future__ import annotations

import threading

from tui.tui_helpers import run_console, settle, text_of, toasts, wait_until

from usermgmt.client.factory import RemoteTarget, connect
from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.screens.audit import AuditScreen


def test_remote_verification_waits_indeterminately_and_escape_stops_waiting(as_admin, served):
    backend = connect(RemoteTarget(served.url, "admin"))
    gate = threading.Event()
    verify = backend.audit.verify

    def held(actor, expect_head=None, *, progress=None):
        gate.wait(10)  # the request is on its way; the console waits
        return verify(actor, expect_head, progress=progress)

    backend.audit.verify = held
    app = UserMgmtApp(backend, os_user="tester", retry_start=False, refresh_seconds=0)

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("v")
        line = app.screen.query_one("#status-line")
        await wait_until(pilot, lambda: "on the server" in text_of(line), "the wait")
        assert app.screen.query_one("#verify-progress").total is None  # indeterminate
        await pilot.press("escape")
        assert isinstance(app.screen, AuditScreen)
        assert not app.screen.query("#verify-progress")
        gate.set()
        await settle(pilot)
        assert any("the server may still finish it" in t for t in toasts(app))
        assert not any("intact" in t for t in toasts(app))  # the late answer is dropped
        await pilot.press("v")  # waiting again, to the end: the answer is shown
        await settle(pilot)
        assert any("Audit chain intact" in t for t in toasts(app))
        # the oldest event through the server: counted by its head, read oldest first
        table = app.screen.query_one("#events")
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_value.seq == 1 and table.cursor_row == table.row_count - 1
        await pilot.press("o")
        await settle(pilot)
        assert table.cursor_value.seq == 1 and table.cursor_row == 0

    try:
        run_console(app, scenario)
    finally:
        gate.set()
        backend.close()
