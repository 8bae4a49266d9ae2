"""The head start: the first page and count fetched before the table asks, used once."""

from __future__ import annotations

from concurrent.futures import Future

from usermgmt.core.context import Actor
from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.paging import FIRST_PAGE, Ahead, Fetch, UserFilter, UserSource
from usermgmt.tui.start import HeadStart
from usermgmt.tui.widgets.lazy_table import LazyTable

from .tui_helpers import run_console, seed_users


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def test_a_source_takes_the_page_and_count_fetched_ahead_once(services, tui_actor):
    seed_users(services, 3)
    flt = UserFilter()
    early = UserSource(services, tui_actor, flt, 10)
    page = early.fetch(FIRST_PAGE)
    ahead = Ahead(tui_actor, flt, 10, page=_done(page), count=_done(42))

    source = UserSource(services, tui_actor, flt, 10, ahead=ahead)
    assert source.fetch(FIRST_PAGE) is page
    assert source.count() == 42  # the count fetched ahead (a stale one would show too)
    again = source.fetch(FIRST_PAGE)  # a reload asks the database
    assert again is not page and [u.id for u in again[0]] == [u.id for u in page[0]]
    assert source.count() == 3
    assert source.fetch(Fetch(0, None, 1))[0][0].id == page[0][1].id  # other plans as before


def test_an_ahead_for_another_query_is_ignored(services, tui_actor):
    seed_users(services, 2)
    ahead = Ahead(tui_actor, UserFilter(), 10, page=_done(([], None)), count=_done(0))
    other = UserSource(services, tui_actor, UserFilter(sort="email"), 10, ahead=ahead)
    assert len(other.fetch(FIRST_PAGE)[0]) == 2 and other.count() == 2
    stranger = Actor.operator("tui", "someone-else")
    assert UserSource(services, stranger, UserFilter(), 10, ahead=ahead).count() == 2


def test_the_console_shows_the_first_page_fetched_by_the_head_start(services):
    seed_users(services, 5)
    start = HeadStart(services.settings, os_user="tester")
    try:
        app = UserMgmtApp(
            start.built, os_user="tester", retry_start=False, first_page=start.first_page
        )

        async def scenario(pilot):
            table = app.screen.query_one("#users", LazyTable)
            assert table.row_count == 5 and table.cache.exact
            assert app.ctx.take_first_page() is None  # taken by the first load

        run_console(app, scenario)
        assert start.first_page.page.done() and start.first_page.count.done()
    finally:
        start.close()
