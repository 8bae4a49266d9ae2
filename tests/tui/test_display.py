"""The console never hands stored text to the terminal raw: control and bidi characters
show as escapes, and markup in a name shows as written (table, detail, dialogs, toasts)."""

from __future__ import annotations

import re

from core.helpers import HOSTILE_NAME, HOSTILE_SHOWN, store_raw

from usermgmt.core.context import RequestContext
from usermgmt.tui.screens.detail import DetailScreen
from usermgmt.tui.screens.event import EventScreen
from usermgmt.tui.screens.user_form import UserFormScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from .tui_helpers import STRONG_PASSWORD, notifications, run_console, settle, toasts

RAW = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
WIDE = (220, 40)  # the whole name fits in its column


def _eve(services, operator, ctx):
    """A user whose stored names, bio, session and audit event hold HOSTILE_NAME."""
    eve = services.users.create(
        operator,
        ctx,
        {"email": "eve@example.com", "username": "eve", "password": STRONG_PASSWORD},
    )
    services.auth.login(
        RequestContext(ip="10.0.0.1", user_agent=HOSTILE_NAME),
        {"email": "eve@example.com", "password": STRONG_PASSWORD},
    )
    store_raw(services, eve.id, last_name=HOSTILE_NAME)
    services.users.update(operator, ctx, str(eve.id), {"last_name": "Doe"})  # before: stored
    store_raw(services, eve.id, first_name=HOSTILE_NAME, bio=f"line one\n{HOSTILE_NAME}")
    return eve


def _shown(strip) -> str:
    return "".join(segment.text for segment in strip)


def shown(widget) -> str:
    """What a Static shows (markup applied), and that none of its lines on screen holds
    a character the terminal would obey."""
    for y in range(widget.size.height):
        assert not RAW.search(_shown(widget.render_line(y)))
    return widget.visual.plain


def test_users_table_detail_and_dialogs_show_stored_text_escaped(services, make_app, operator, ctx):
    eve = _eve(services, operator, ctx)

    app = make_app()

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        row = _shown(table.render_line(1))  # line 0 is the header
        assert not RAW.search(row)
        assert HOSTILE_SHOWN[:40] in row  # cut to its column's width

        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        title = shown(detail.query_one("#detail-title"))
        assert HOSTILE_SHOWN in title  # [red]…[/red] and [link=…] as written
        profile = shown(detail.query_one("#profile"))
        assert HOSTILE_SHOWN in profile and f"line one\\n{HOSTILE_SHOWN}" in profile
        sessions = detail.query_one("#sessions")
        assert sessions.get_row_at(0)[4].plain == HOSTILE_SHOWN
        events = detail.query_one("#events")
        changes = [events.get_row_at(i)[3].plain for i in range(events.row_count)]
        assert any(HOSTILE_SHOWN in c for c in changes)
        for widget in (detail.query_one("#sessions"), events):
            for y in range(widget.size.height):
                assert not RAW.search(_shown(widget.render_line(y)))

        events.focus()
        await pilot.press("home", "enter")  # the newest event: the last name's change
        await settle(pilot)
        assert isinstance(app.screen, EventScreen)
        body = shown(app.screen.query_one("#event-body Static"))
        assert "\\u001b[2J" in body and "\\x9b1m\\u202e[red]markup[/red]" in body
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("e")
        form = app.screen
        assert isinstance(form, UserFormScreen)
        assert form.query_one("#in-first_name").value == HOSTILE_SHOWN
        await pilot.press("ctrl+s")  # left as shown: nothing is written
        await settle(pilot)
        assert "Nothing changed." in toasts(app)
        assert isinstance(app.screen, DetailScreen)

    run_console(app, scenario, size=WIDE)
    assert services.user_reads.get(operator, str(eve.id)).first_name == HOSTILE_NAME


def test_notifications_are_plain_text(services, make_app):
    app = make_app()

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        app.notify(f"Saved {HOSTILE_NAME}.", title="\x1b]0;title\x07")
        app.screen.notify("[b]bold?[/b]")  # a widget's notify asks for markup
        await pilot.pause()
        assert toasts(app)[-2:] == [f"Saved {HOSTILE_SHOWN}.", "[b]bold?[/b]"]
        notes = notifications(app)
        assert all(not n.markup for n in notes)
        assert notes[-2].title == "\\x1b]0;title\\x07"

    run_console(app, scenario, size=WIDE)


def test_a_stored_email_with_controls_in_titles_palette_and_filters(
    services, make_app, operator, ctx
):
    from textual.content import Content

    from usermgmt.tui.screens.audit import AuditScreen

    eve = services.users.create(operator, ctx, {"email": "eve@example.com"})
    store_raw(services, eve.id, email=f"{HOSTILE_NAME}\\@example.com")
    shown_email = f"{HOSTILE_SHOWN}\\@example.com"

    app = make_app()

    async def scenario(pilot):
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert shown(detail.query_one("#detail-title")).startswith(shown_email)
        titles = [Content.from_markup(c.title).plain for c in detail.palette_commands()]
        assert f"Edit: {shown_email}" in titles  # the palette reads titles as markup
        await pilot.press("a")
        await settle(pilot)
        audit = app.screen
        assert isinstance(audit, AuditScreen)
        # The filter holds the id, which finds the user (the email shown escaped would not).
        assert audit.query_one("#audit-target").value == str(eve.id)
        assert audit.query_one("#events", LazyTable).row_count == 1

    run_console(app, scenario, size=WIDE)
