"""The users screen over the real core: paging, search, filters, sort, keys."""

from __future__ import annotations

from usermgmt.tui.screens.detail import DetailScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets.lazy_table import LazyTable

from ..tui_helpers import run_console, seed_users, settle, text_of, toasts, wait_until


def emails(table: LazyTable, n: int | None = None) -> list[str]:
    rows = [table.cache.row(i) for i in range(min(n or table.row_count, table.row_count))]
    return [r.email for r in rows if r is not None]


def test_first_page_and_count(services, make_app):
    seed_users(services, 5)

    app = make_app()

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        table = app.screen.query_one("#users", LazyTable)
        assert table.has_focus
        # newest first by default
        assert emails(table) == [f"user{i:03d}@example.com" for i in (4, 3, 2, 1, 0)]
        status = text_of(app.screen.query_one("#status-line"))
        assert status.startswith("5 users")
        assert "sorted by created, newest first" in status

    run_console(app, scenario)


def test_lazy_paging_keeps_memory_bounded_and_reaches_the_end(services, make_app):
    seed_users(services, 115)

    app = make_app(page_size=10)

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        table.max_pages = table.cache.max_pages = 5
        assert table.row_count == 115
        # Only the pages around the viewport were fetched, not all twelve.
        assert 0 in table.cache.pages and max(table.cache.pages) < 5
        await pilot.press("end")  # a jump: fetched by offset, the pages between skipped
        await settle(pilot)
        assert table.cursor_row == 114
        assert table.cursor_value.email == "user000@example.com"  # the oldest
        assert len(table.cache.pages) <= 5 and table.cache.has_page(11)
        for _ in range(3):
            await pilot.press("pageup")
        await settle(pilot)
        assert len(table.cache.pages) <= 5
        index = table.cursor_row
        assert table.cursor_value.email == f"user{114 - index:03d}@example.com"
        await pilot.press("home")
        await settle(pilot)
        assert table.cursor_value.email == "user114@example.com"
        # by email, the end is fetched backwards: the last email, and the rows above it
        await pilot.press("o", "end")
        await settle(pilot)
        assert table.cursor_value.email == "user114@example.com"
        await pilot.press("up")
        await settle(pilot)
        assert table.cursor_value.email == "user113@example.com"

    run_console(app, scenario)


def test_search_as_you_type(services, make_app):
    seed_users(services, 3)
    seed_users(services, 2, prefix="zed")

    app = make_app()

    async def scenario(pilot):
        await pilot.press("slash")
        assert app.screen.focused.id == "search"
        await pilot.press(*"ZED0")  # case-insensitive, across email/username/names
        await wait_until(pilot, lambda: app.screen.filter.search == "ZED0", "debounce")
        await settle(pilot)
        table = app.screen.query_one("#users", LazyTable)
        assert emails(table) == ["zed001@example.com", "zed000@example.com"]
        assert "2 users (search “ZED0”)" in text_of(app.screen.query_one("#status-line"))
        await pilot.press("escape")
        assert table.has_focus
        await pilot.press("slash", "down")  # down from the search box: into the table
        assert table.has_focus
        await pilot.press("c")  # clear filters
        await settle(pilot)
        assert table.row_count == 5

    run_console(app, scenario)


def test_no_match_shows_an_empty_table(services, make_app):
    seed_users(services, 2)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("slash", *"qqq", "enter")
        await settle(pilot)
        table = app.screen.query_one("#users", LazyTable)
        assert table.row_count == 0 and table.cursor_value is None
        assert "0 users" in text_of(app.screen.query_one("#status-line"))
        await pilot.press("d")  # nothing highlighted: a warning, no crash
        assert any("No user" in m for m in toasts(app))

    run_console(app, scenario)


def test_role_status_and_deleted_filters(services, make_app, operator, ctx):
    users = seed_users(services, 4)
    services.roles.grant(operator, ctx, str(users[0].id), "moderator")
    services.users.lock(operator, ctx, str(users[1].id))
    services.users.delete(operator, ctx, str(users[2].id))

    app = make_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        assert table.row_count == 3  # the deleted one is hidden
        screen.query_one("#role").value = "moderator"
        await settle(pilot)
        assert emails(table) == ["user000@example.com"]
        screen.query_one("#role").clear()
        screen.query_one("#status").value = "locked"
        await settle(pilot)
        assert emails(table) == ["user001@example.com"]
        await pilot.press("c", "x")  # clear, then show deleted
        await settle(pilot)
        assert screen.filter.include_deleted
        assert "user002@example.com" in emails(table)
        assert table.row_count == 4

    run_console(app, scenario)


def test_sort_keys_and_header_click(services, make_app):
    seed_users(services, 3, prefix="m")
    seed_users(services, 1, prefix="a")
    seed_users(services, 1, prefix="z")

    app = make_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        await pilot.press("o")  # created -> email A→Z
        await settle(pilot)
        assert screen.filter.sort == "email"
        assert emails(table)[0] == "a000@example.com"
        await pilot.press("O")  # reversed
        await settle(pilot)
        assert emails(table)[0] == "z000@example.com"
        # Clicking the Created header sorts by it (newest first), again reverses.
        await pilot.click(LazyTable, offset=(110, 0))
        await settle(pilot)
        assert screen.filter.sort == "-created_at"
        await pilot.click(LazyTable, offset=(110, 0))
        await settle(pilot)
        assert screen.filter.sort == "created_at"
        assert emails(table)[0] == "m000@example.com"

    run_console(app, scenario)


def test_a_click_moves_the_cursor_and_a_click_on_it_opens_the_user(ui_services, make_ui_app):
    seed_users(ui_services, 3)
    app = make_ui_app()

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        await pilot.click(LazyTable, offset=(5, 3))  # line 0 is the header: the third row
        assert table.cursor_row == 2 and isinstance(app.screen, UsersScreen)
        await pilot.click(LazyTable, offset=(5, 3))
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.user.email == "user000@example.com"  # newest first: the oldest

    run_console(app, scenario)


def test_keys_shown_follow_the_highlighted_user(ui_services, make_ui_app, operator, ctx):
    users = seed_users(ui_services, 2)
    ui_services.users.lock(operator, ctx, str(users[1].id))

    app = make_ui_app()

    async def scenario(pilot):
        actions = lambda: {b.binding.action for b in app.screen.active_bindings.values()}  # noqa: E731
        assert "unlock_user" in actions() and "lock_user" not in actions()
        assert "restore_user" not in actions()
        await pilot.press("down")
        assert "lock_user" in actions() and "unlock_user" not in actions()

    run_console(app, scenario)


def test_a_fast_scroll_does_not_pile_up_queries(services, make_app):
    seed_users(services, 150)

    app = make_app(page_size=5)

    async def scenario(pilot):
        table = app.screen.query_one("#users", LazyTable)
        most = 0
        for row in range(0, 150, 7):  # like dragging the scrollbar down
            table.move_cursor(row)
            most = max(most, len(table._in_flight))
            await pilot.pause(0)
        assert most <= 8
        await settle(pilot)
        assert table.cursor_row == 147
        assert table.cursor_value.email == "user002@example.com"

    run_console(app, scenario)
