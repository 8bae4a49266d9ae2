"""The audit screen at thousands of events: the oldest reachable (End/G, oldest first),
live refresh that keeps the highlighted event, verification with progress and cancel."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

import pytest

from usermgmt.core import audit
from usermgmt.core.context import Actor, RequestContext
from usermgmt.tui.screens.audit import AuditScreen
from usermgmt.tui.screens.event import EventScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from ..tui_helpers import run_console, settle, text_of, toasts, wait_until

EVENTS = 3000


def seed_events(services, n: int, action: str = "test.seeded") -> None:
    """``n`` chained events in one transaction (one multi-row INSERT)."""
    op, ctx = Actor.operator("cli", "seed"), RequestContext(request_id="seed")
    pending = [audit.PendingEvent(action, changes={"n": i}) for i in range(n)]
    with services.db.write() as s:
        audit.record_many(s, op, ctx, pending, at=datetime.now(UTC), ids=services.ids)


@pytest.fixture
def many(services):
    seed_events(services, EVENTS - 10)
    seed_events(services, 10, action="test.rare")  # seq 2991..3000
    return services


def events(app) -> LazyTable:
    return app.screen.query_one("#events", LazyTable)


def status(app) -> str:
    return text_of(app.screen.query_one("#status-line"))


def test_the_oldest_events_are_one_key_away(many, make_app):
    app = make_app(refresh_seconds=0)

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        table = events(app)
        assert table.row_count == EVENTS and status(app).startswith(f"{EVENTS:,} events")
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_row == EVENTS - 1 and table.cursor_value.seq == 1
        await pilot.press("home", "G")
        await settle(pilot)
        assert table.cursor_value.seq == 1
        await pilot.press("up")
        await settle(pilot)
        assert table.cursor_value.seq == 2
        # oldest first: the same log from the other end
        await pilot.press("o")
        await settle(pilot)
        assert table.cursor_row == 0 and table.cursor_value.seq == 1
        assert "oldest first" in status(app)
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_value.seq == EVENTS
        # a filter's end is not known: End shows its oldest match first instead
        await pilot.press("o")
        await settle(pilot)
        app.screen.query_one("#audit-action").value = "test.seeded"
        app.screen.query_one("#audit-action").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert not table.cache.exact and table.cursor_value.seq == EVENTS - 10
        await pilot.press("end")
        await settle(pilot)
        assert "oldest first" in status(app)
        assert table.cursor_row == 0 and table.cursor_value.seq == 1
        await pilot.press("down")
        await settle(pilot)
        assert table.cursor_value.seq == 2

    run_console(app, scenario)


def test_new_events_come_in_above_the_highlighted_one(many, make_app):
    app = make_app(refresh_seconds=0.05)

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        table = events(app)
        await pilot.press("down", "down", "down")
        await settle(pilot)
        highlighted = table.cursor_value.seq
        assert highlighted == EVENTS - 3
        # a dialog is open: nothing moves underneath it
        await pilot.press("enter")
        assert isinstance(app.screen, EventScreen)
        seed_events(many, 5, action="test.live")
        for _ in range(10):
            await pilot.pause(0.06)
        assert table.row_count == EVENTS
        await pilot.press("escape")
        assert isinstance(app.screen, AuditScreen)
        await wait_until(pilot, lambda: table.row_count == EVENTS + 5, "the new events")
        await settle(pilot)
        assert table.cursor_value.seq == highlighted and table.cursor_row == 3 + 5
        assert table.cache.row(0).seq == EVENTS + 5 and table.cache.row(0).action == "test.live"
        assert round(table.scroll_y) == 0  # at the top: the new events show there
        # filtered: only the matching new events come in
        app.screen.query_one("#audit-action").value = "test.rare"
        app.screen.query_one("#audit-action").focus()
        await pilot.press("enter")
        await settle(pilot)
        app.screen.query_one("#events").focus()
        await pilot.press("end")
        await settle(pilot)
        assert table.row_count == 10 and table.cursor_value.seq == EVENTS - 9
        seed_events(many, 2, action="test.rare")
        seed_events(many, 3, action="test.other")
        await wait_until(pilot, lambda: table.row_count == 12, "the new matches")
        await settle(pilot)
        assert table.cursor_row == 11 and table.cursor_value.seq == EVENTS - 9
        assert [table.cache.row(i).seq for i in range(2)] == [EVENTS + 7, EVENTS + 6]

    run_console(app, scenario)


def test_verification_shows_progress_and_can_be_cancelled(many, make_app, monkeypatch):
    monkeypatch.setattr(audit, "PROGRESS_EVERY", 100)
    gate = threading.Event()
    verify = many.audit.verify

    def gated(actor, expect_head=None, *, progress=None):
        def held(checked: int, total: int) -> None:
            progress(checked, total)
            if checked >= 1000:
                gate.wait(10)  # the test looks at the bar, then cancels

        return verify(actor, expect_head, progress=held)

    monkeypatch.setattr(many.audit, "verify", gated)
    app = make_app(refresh_seconds=0)

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("v")
        text = f"1,000 of {EVENTS:,} events"
        await wait_until(pilot, lambda: text in status(app), "progress")
        bar = app.screen.query_one("#verify-progress")
        assert bar.total == EVENTS and bar.progress == 1000
        await pilot.press("escape")
        assert isinstance(app.screen, AuditScreen)  # escape cancelled, did not leave
        gate.set()
        await settle(pilot)
        cancelled = [t for t in toasts(app) if "cancelled" in t]
        assert cancelled and re.fullmatch(
            r"Verification cancelled after 1,100 events: nothing concluded\.", cancelled[0]
        )
        assert not app.screen.query("#verify-progress")
        assert not any("intact" in t or "BROKEN" in t for t in toasts(app))
        # and a full run afterwards reports the whole chain
        await pilot.press("v")
        await settle(pilot)
        assert any(f"intact: {EVENTS:,} events verified" in t for t in toasts(app))

    run_console(app, scenario)


def test_the_audit_log_comes_back_as_left_with_what_was_written_meanwhile(many, make_app):
    app = make_app(refresh_seconds=0)  # no timer: the return itself fetches the new events

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        screen, table = app.screen, events(app)
        await pilot.press("o", "down", "down")
        await settle(pilot)
        assert table.cursor_value.seq == 3
        await pilot.press("escape")
        seed_events(many, 4, action="test.meanwhile")
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is screen and "oldest first" in status(app)
        assert table.cursor_value.seq == 3 and table.row_count == EVENTS + 4
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_value.action == "test.meanwhile"

    run_console(app, scenario)


def test_refreshes_never_pile_up(many, make_app, monkeypatch):
    app = make_app(refresh_seconds=0)
    gate, asked = threading.Event(), []
    head = many.audit.head

    def slow_head():
        asked.append(1)
        gate.wait(10)
        return head()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        monkeypatch.setattr(many.audit, "head", slow_head)
        try:
            for _ in range(5):  # ticks while the first refresh still waits on the database
                screen.live_refresh()
                await pilot.pause(0.02)
            assert len(asked) == 1
            assert len([w for w in app.workers if w.group == "live" and w.is_running]) == 1
        finally:
            gate.set()
        await settle(pilot)
        screen.live_refresh()  # the one before ended: the next tick runs
        await settle(pilot)
        assert len(asked) == 2

    run_console(app, scenario)
