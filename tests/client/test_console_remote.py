"""The console in remote mode: the same screens through a served API, as a person."""

from __future__ import annotations

import pytest
from tui.tui_helpers import run_console, settle, toasts

from usermgmt.client.factory import RemoteTarget, connect
from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.remote_start import RemoteHeadStart
from usermgmt.tui.screens.lock import LockScreen
from usermgmt.tui.screens.users import UsersScreen

from .conftest import unique_email


@pytest.fixture
def remote_app(served):
    made = []

    def make(context: str) -> UserMgmtApp:
        backend = connect(RemoteTarget(served.url, context))
        made.append(backend)
        app = UserMgmtApp(backend, os_user="tester", search_debounce=0.01, retry_start=False)
        app.title = f"usermgmt · {backend.server}"
        app.sub_title = backend.where()
        return app

    yield make
    for backend in made:
        backend.close()


def test_the_console_lists_users_through_the_server_as_the_person(as_admin, remote_app, served):
    email = unique_email("console")
    assert as_admin("users", "create", "--email", email, "--no-password").exit_code == 0
    app = remote_app("admin")

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        assert app.ctx.where == f"{served.url} as root@example.com"
        table = app.screen.query_one("#users")
        assert table.cursor_value.email == email  # newest first, as embedded

    run_console(app, scenario)
    assert served.url in app.title and "root@example.com" in app.sub_title


def test_a_moderator_is_told_when_the_server_refuses_an_action(as_moderator, remote_app):
    app = remote_app("mod")

    async def scenario(pilot):
        await pilot.press("l")
        assert isinstance(app.screen, LockScreen)
        box = app.screen.query_one("#minutes")
        box.focus()
        await pilot.pause()
        box.value = "3"
        box.cursor_position = 1
        await pilot.press("0")
        await pilot.press("ctrl+s")
        await settle(pilot)

    run_console(app, scenario)
    refused = toasts(app, "error")
    assert any("not allowed" in t.lower() and "mod@example.com" in t for t in refused), refused


def test_the_remote_console_shows_the_first_page_its_head_start_fetched(as_admin, served):
    email = unique_email("ahead")
    assert as_admin("users", "create", "--email", email, "--no-password").exit_code == 0
    backend = connect(RemoteTarget(served.url, "admin"))
    start = RemoteHeadStart(backend, os_user="tester")
    try:
        assert start.first_page.page.result()[0][0].email == email
        start.first_page.count.result()  # both answers in hand before the console starts
        asked = []
        list_rows, count = backend.user_reads.list_rows, backend.user_reads.count
        backend.user_reads.list_rows = lambda *a, **k: asked.append("page") or list_rows(*a, **k)
        backend.user_reads.count = lambda *a, **k: asked.append("count") or count(*a, **k)
        app = UserMgmtApp(backend, os_user="tester", retry_start=False, first_page=start.first_page)

        async def scenario(pilot):
            table = app.screen.query_one("#users")
            assert table.cursor_value.email == email and table.cache.exact
            assert app.ctx.take_first_page() is None  # taken by the first load

        run_console(app, scenario)
        assert asked == []  # neither the page nor the count was asked for again
    finally:
        start.close()
        backend.close()
