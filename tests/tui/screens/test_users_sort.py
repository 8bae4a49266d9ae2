"""Sorting the users screen by every column it shows but roles, both ways."""

from __future__ import annotations

from usermgmt.tui.screens.users import COLUMNS, SORT_CYCLE
from usermgmt.tui.widgets.lazy_table import LazyTable

from ..tui_helpers import run_console, seed_users, settle


def test_o_and_O_sort_by_every_column_both_ways(services, make_app, operator, ctx):
    users = seed_users(services, 5)
    names = [("Cy", "Abe"), ("al", "Zed"), ("Bea", None), (None, None), ("al", "Bo")]
    for user, (first, last) in zip(users, names, strict=True):
        services.users.update(operator, ctx, str(user.id), {"first_name": first, "last_name": last})
    services.users.lock(operator, ctx, str(users[3].id))
    services.users.update(operator, ctx, str(users[4].id), {"email_verified": True})
    listed = services.user_reads.list(operator, {"limit": 100}).data
    keys = {
        "created_at": lambda u: u.created_at,
        "email": lambda u: u.email,
        "username": lambda u: u.username,
        "name": lambda u: f"{u.first_name or ''} {u.last_name or ''}".lower(),
        "status": lambda u: u.status,
        "last_login_at": lambda u: 0,  # nobody logged in: by id
    }
    assert set(keys) == {s.lstrip("-") for s in SORT_CYCLE}
    assert {c.sort for c in COLUMNS} == set(keys) | {None}  # only roles has none
    app = make_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        for step in range(len(SORT_CYCLE)):
            if step:
                await pilot.press("o")
                await settle(pilot)
            sort = screen.filter.sort
            assert sort == SORT_CYCLE[step]
            key = keys[sort.lstrip("-")]
            ascending = [u.id for u in sorted(listed, key=lambda u: (key(u), u.id))]
            shown = [table.row(i).id for i in range(table.row_count)]
            assert shown == (ascending[::-1] if sort.startswith("-") else ascending), sort
            await pilot.press("O")
            await settle(pilot)
            shown = [table.row(i).id for i in range(table.row_count)]
            assert shown == (ascending if sort.startswith("-") else ascending[::-1]), sort
            await pilot.press("O")
            await settle(pilot)

    run_console(app, scenario)


def test_clicking_the_name_and_status_headers_sorts(ui_services, make_ui_app):
    seed_users(ui_services, 2)
    app = make_ui_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        widths = table._layout(table.scrollable_content_region.width)
        for key, expected in (("name", ["name", "-name"]), ("status", ["status", "-status"])):
            index = [c.key for c in COLUMNS].index(key)
            x = 2 + sum(w + 1 for w in widths[:index]) + 1
            for sort in expected:
                await pilot.click(LazyTable, offset=(x, 0))
                await settle(pilot)
                assert screen.filter.sort == sort
        assert "▼" in table.render_line(0).text  # -status: the arrow points down

    run_console(app, scenario)
