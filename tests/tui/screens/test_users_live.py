"""The users screen refreshing itself: the cursor, the marks and the scroll stay; a
change made elsewhere shows; a user deleted elsewhere stays as a struck ghost that
no action touches."""

from __future__ import annotations

import pytest

from usermgmt.core.config import load_settings
from usermgmt.core.errors import ConfigurationError
from usermgmt.core.services.runtime import runtime_options
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.goto import GotoScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from ..tui_helpers import run_console, seed_users, settle, text_of, toasts, wait_until


def test_a_refresh_keeps_the_user_marks_and_scroll_and_shows_changes(
    services, make_app, operator, ctx
):
    users = seed_users(services, 40)
    app = make_app(page_size=10)

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        await pilot.press("pagedown")  # newest first: row i is user 39 - i
        await pilot.press("space")  # marks the row, moves down
        await settle(pilot)
        here = table.cursor_value
        marked = set(screen.marks)
        row, scroll = table.cursor_row, table.scroll_y
        assert scroll > 0 and len(marked) == 1
        services.users.update(operator, ctx, str(here.id), {"first_name": "Changed"})
        seed_users(services, 1, prefix="newer")  # one more row above: the rows shift
        services.users.delete(operator, ctx, str(users[0].id))  # the last row goes

        generation = table.generation
        screen.auto_refresh()
        screen.auto_refresh()  # while the first is under way: not another
        assert table.generation == generation + 1
        await settle(pilot)

        assert table.cursor_value.id == here.id and table.cursor_row == row + 1
        assert table.cursor_value.first_name == "Changed"
        assert table.cursor_row - table.scroll_y == row - scroll  # the same line on screen
        assert table.ghost is None
        assert set(screen.marks) == marked
        assert table.row_count == 40
        assert "1 marked" in text_of(screen.query_one("#status-line"))

    run_console(app, scenario)


def test_a_user_deleted_elsewhere_stays_struck_and_is_not_acted_on(
    services, make_app, operator, ctx
):
    users = seed_users(services, 3)
    app = make_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        await pilot.press("down")  # user001
        gone = table.cursor_value
        assert gone.id == users[1].id
        services.users.delete(operator, ctx, str(gone.id))

        screen.auto_refresh()
        await settle(pilot)

        assert table.cursor_value.id == gone.id and table.cursor_row == 1
        assert table.ghost is not None and table.row_count == 3  # two rows and the ghost
        assert screen.cell(gone, "status") == ("gone", "gone")  # struck through
        status_line = text_of(screen.query_one("#status-line"))
        assert "user001@example.com: deleted elsewhere" in status_line
        await pilot.press("d")
        assert not isinstance(app.screen, ConfirmScreen)
        assert "user001@example.com: deleted elsewhere; nothing done." in toasts(app, "warning")
        await pilot.press("space")  # a ghost cannot be marked either
        assert not screen.marks
        await pilot.press("up")  # off the ghost: it goes
        assert table.ghost is None and table.row_count == 2
        assert [table.row(i).email for i in range(2)] == [
            "user002@example.com",
            "user000@example.com",
        ]

    run_console(app, scenario)


def test_an_action_on_a_user_deleted_before_the_refresh_says_so(services, make_app, operator, ctx):
    users = seed_users(services, 2)
    app = make_app()

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        services.users.delete(operator, ctx, str(users[1].id))  # the highlighted one
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert "user001@example.com: deleted elsewhere; nothing done." in toasts(app, "warning")
        assert table.cursor_value.id == users[1].id and table.ghost is not None
        assert not any(m.startswith("Deleted") for m in toasts(app))

    run_console(app, scenario)


def test_the_interval_refreshes_pauses_under_a_dialog_and_0_is_off(
    ui_services, make_ui_app, operator, ctx
):
    (user,) = seed_users(ui_services, 1)

    def shown(app):
        user = app.screen.query_one("#users", LazyTable).cursor_value
        return user.first_name if user is not None else None

    app = make_ui_app(refresh_seconds=0.05)

    async def scenario(pilot):
        # Not settled first: waiting for every worker would meet the ones a refresh
        # cancels (those of pages already in, finishing).
        await wait_until(pilot, lambda: isinstance(app.screen, UsersScreen), "the screen")
        await wait_until(pilot, lambda: shown(app) is not None, "the first page")
        ui_services.users.update(operator, ctx, str(user.id), {"first_name": "Once"})
        await wait_until(pilot, lambda: shown(app) == "Once", "the interval's refresh")
        await pilot.press("colon")
        assert isinstance(app.screen, GotoScreen)
        ui_services.users.update(operator, ctx, str(user.id), {"first_name": "Twice"})
        await pilot.pause(0.3)  # several intervals, none while the dialog is open
        assert app.screen_stack[-2].query_one("#users").cursor_value.first_name == "Once"
        await pilot.press("escape")
        await wait_until(pilot, lambda: shown(app) == "Twice", "the refresh after the dialog")

    run_console(app, scenario, settled=False)

    off = make_ui_app(refresh_seconds=0)

    async def never(pilot):
        assert isinstance(off.screen, UsersScreen)
        ui_services.users.update(operator, ctx, str(user.id), {"first_name": "Thrice"})
        await pilot.pause(0.3)
        assert shown(off) == "Twice"

    run_console(off, never)


def test_the_interval_is_a_setting(monkeypatch):
    assert runtime_options(load_settings()).tui_refresh_seconds == 10
    monkeypatch.setenv("USERMGMT_TUI_REFRESH_SECONDS", "0")
    assert runtime_options(load_settings()).tui_refresh_seconds == 0
    monkeypatch.setenv("USERMGMT_TUI_REFRESH_SECONDS", "-1")
    with pytest.raises(ConfigurationError):
        load_settings()
