"""Copying the highlighted user's id or email (OSC 52), and going to a user by reference."""

from __future__ import annotations

import uuid

from usermgmt.tui.screens.detail import DetailScreen
from usermgmt.tui.screens.goto import GotoScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets.form import FormField

from ..tui_helpers import run_console, seed_users, settle, toasts


def test_copy_the_id_and_the_email(ui_services, make_ui_app):
    (user,) = seed_users(ui_services, 1)
    app = make_ui_app()

    async def scenario(pilot):
        await pilot.press("y")
        assert app.clipboard == str(user.id)
        assert toasts(app)[-1] == f"Copied the id of user000@example.com: {user.id}"
        await pilot.press("Y")
        assert app.clipboard == "user000@example.com"
        assert toasts(app)[-1] == "Copied the email of user000@example.com: user000@example.com"

    run_console(app, scenario)


async def go_to(pilot, ref: str) -> None:
    await pilot.press("colon")
    assert isinstance(pilot.app.screen, GotoScreen)
    box = pilot.app.screen.query_one("#ref")
    box.value = ref
    await pilot.press("enter")
    await settle(pilot)


def test_go_to_by_id_short_id_email_and_username(services, make_app):
    users = seed_users(services, 3)
    target = users[0]  # the last row, newest first
    app = make_app()

    async def scenario(pilot):
        table = app.screen.query_one("#users")
        for ref in (str(target.id), str(target.id)[:8], "USER000@example.com", "user000"):
            await go_to(pilot, ref)
            assert isinstance(app.screen, DetailScreen), ref
            assert app.screen.user.id == target.id
            await pilot.press("escape")
            await settle(pilot)
            assert isinstance(app.screen, UsersScreen)
            assert table.cursor_value.id == target.id  # highlighted too
            await pilot.press("home")

    run_console(app, scenario)


def test_go_to_says_not_found_and_keeps_what_was_typed(services, make_app):
    seed_users(services, 1)
    app = make_app()

    async def scenario(pilot):
        await go_to(pilot, "nobody")
        form = app.screen
        assert isinstance(form, GotoScreen)
        assert form.query_one("#field-ref", FormField).error == "No user 'nobody'"
        assert form.query_one("#ref").value == "nobody"
        await go_to_again(pilot, "")
        assert "Type an id" in form.query_one("#field-ref", FormField).error
        await pilot.press("escape")
        assert isinstance(app.screen, UsersScreen)

    async def go_to_again(pilot, ref):
        app.screen.query_one("#ref").value = ref
        await pilot.press("enter")
        await settle(pilot)

    run_console(app, scenario)


class SharedPrefixIds:
    """Ids that all start with ``abcdef12``: a short id that names several users."""

    def __init__(self) -> None:
        self.n = 0

    def new_uuid(self) -> uuid.UUID:
        self.n += 1
        return uuid.UUID(f"abcdef12-0000-4000-8000-{self.n:012d}")


def test_go_to_an_ambiguous_short_id_names_the_candidates(make_services, make_app):
    services = make_services(ids=SharedPrefixIds())
    seed_users(services, 2)
    app = make_app(services)

    async def scenario(pilot):
        await go_to(pilot, "abcdef12")
        assert isinstance(app.screen, GotoScreen)
        error = app.screen.query_one("#field-ref", FormField).error
        assert "'abcdef12' is the start of several user ids" in error

    run_console(app, scenario)
