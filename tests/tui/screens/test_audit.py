"""The audit screen: newest first, filters, paging on, chain verification."""

from __future__ import annotations

from usermgmt.tui.screens.audit import AuditScreen
from usermgmt.tui.screens.event import EventScreen
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from ..tui_helpers import run_console, seed_users, settle, text_of, toasts


def actions(table: LazyTable) -> list[str]:
    rows = [table.cache.row(i) for i in range(table.row_count)]
    return [r.action for r in rows if r is not None]


def test_audit_log_newest_first_with_filters(services, make_app, operator, ctx):
    users = seed_users(services, 3)
    services.users.lock(operator, ctx, str(users[0].id))
    services.users.delete(operator, ctx, str(users[1].id))

    app = make_app()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AuditScreen)
        table = screen.query_one("#events", LazyTable)
        assert actions(table) == ["user.deleted", "user.locked"] + ["user.created"] * 3
        assert text_of(screen.query_one("#status-line")).startswith("5 events")
        # action with a trailing *, then a target by email
        screen.query_one("#audit-action").value = "user.lo*"
        await pilot.press("enter")
        await settle(pilot)
        assert actions(table) == ["user.locked"]
        screen.query_one("#audit-action").value = ""
        screen.query_one("#audit-target").value = users[1].email
        screen.query_one("#audit-target").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert actions(table) == ["user.deleted", "user.created"]
        assert all(table.cache.row(i).target_id == users[1].id for i in range(2))
        # an unknown user is an inline problem, not a toast
        screen.query_one("#audit-actor").value = "nobody@example.com"
        screen.query_one("#audit-actor").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_one("#audit-actor").has_class("-bad-filter")
        assert "no user" in text_of(screen.query_one("#status-line"))
        assert not toasts(app, "warning")
        # an operator label (no user id) filters by label
        screen.query_one("#audit-target").value = ""
        screen.query_one("#audit-actor").value = "cli:tester"
        await pilot.press("enter")
        await settle(pilot)
        assert not screen.query_one("#audit-actor").has_class("-bad-filter")
        assert actions(table) == ["user.deleted", "user.locked"]  # seeded as cli:seed
        screen.query_one("#audit-actor").value = "tui:nobody"
        await pilot.press("enter")
        await settle(pilot)
        assert actions(table) == []
        await pilot.press("c")
        await settle(pilot)
        assert len(actions(table)) == 5

    run_console(app, scenario)


def test_time_filters_parse_relative_and_absolute(services, make_app):
    seed_users(services, 2)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#events", LazyTable)
        screen.query_one("#audit-since").value = "1h"
        screen.query_one("#audit-since").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert table.row_count == 2
        screen.query_one("#audit-until").value = "2001-01-01"
        screen.query_one("#audit-until").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert table.row_count == 0
        screen.query_one("#audit-until").value = "yesterday-ish"
        screen.query_one("#audit-until").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert screen.query_one("#audit-until").has_class("-bad-filter")
        assert "until: use 2025-01-31" in text_of(screen.query_one("#status-line"))
        for value in ("99999999999d", "9999-12-31T23:59:59-14:00"):  # leave the calendar
            screen.query_one("#audit-until").value = value
            screen.query_one("#audit-until").focus()
            await pilot.press("enter")
            await settle(pilot)
            assert "until: that time is out of range" in text_of(screen.query_one("#status-line"))

    run_console(app, scenario)


def test_audit_pages_on_by_seq(services, make_app, operator, ctx):
    users = seed_users(services, 25)

    app = make_app(page_size=4)

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        table = app.screen.query_one("#events", LazyTable)
        assert table.cache.exact and table.row_count == 25  # unfiltered: counted by the head
        await pilot.press("end")
        await settle(pilot)
        assert table.cursor_row == 24 and table.cursor_value.target_id == users[0].id
        # filtered, the count is unknown: it pages on as you scroll
        screen = app.screen
        screen.query_one("#audit-action").value = "user.created"
        screen.query_one("#audit-action").focus()
        await pilot.press("enter")
        await settle(pilot)
        assert not table.cache.exact
        for _ in range(6):
            await pilot.press("pagedown")
            await settle(pilot)
        assert table.cache.exact and table.row_count == 25
        assert table.cursor_value.target_id == users[0].id

    run_console(app, scenario, size=(120, 20))


def test_verify_chain_and_open_an_event(services, make_app):
    seed_users(services, 2)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        head = services.audit.head()
        assert f"Audit chain intact: 2 events verified.\nHead: {head}" in toasts(app)
        await pilot.press("enter")
        assert isinstance(app.screen, EventScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, AuditScreen)

    run_console(app, scenario)


def test_a_broken_chain_is_shown_in_a_modal(services, make_app):
    from sqlalchemy import update

    from usermgmt.core.models import AuditEvent

    seed_users(services, 2)
    with services.db.write() as s:  # tamper with the first event, as an attacker would
        if services.db.is_postgres:  # a trigger refuses UPDATE there: switch it off first
            s.connection().exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        s.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(action="x"))
        if services.db.is_postgres:
            s.connection().exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")

    app = make_app()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        assert "seq 1" in app.screen.message
        assert "content does not match its hash" in app.screen.message
        assert f"Head: {services.audit.head()}" in app.screen.message

    run_console(app, scenario)


def test_users_without_a_creation_event_are_named(services, make_app):
    from sqlalchemy import delete, update

    from usermgmt.core.models import AuditEvent, AuditHead

    first, second = seed_users(services, 2)
    with services.db.write() as s:  # rewind the chain to before the second user
        if services.db.is_postgres:
            s.connection().exec_driver_sql("ALTER TABLE audit_events DISABLE TRIGGER USER")
        s.execute(delete(AuditEvent).where(AuditEvent.seq > 1))
        kept = s.get(AuditEvent, 1)
        s.execute(update(AuditHead).values(seq=1, hash=kept.hash))
        if services.db.is_postgres:
            s.connection().exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER USER")

    app = make_app()

    async def scenario(pilot):
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("v")
        await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        assert "1 user(s) have no creation event" in app.screen.message
        assert str(second.id) in app.screen.message and str(first.id) not in app.screen.message

    run_console(app, scenario)
