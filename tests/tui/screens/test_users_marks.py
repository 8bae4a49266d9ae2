"""Marking users on the users screen and acting on all of them at once."""

from __future__ import annotations

from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.widgets.lazy_table import MARK, LazyTable

from ..tui_helpers import run_console, seed_users, settle, text_of, toasts


def emails_of(screen) -> set[str]:
    return {u.email for u in screen.marks.values()}


def test_space_shift_arrows_range_and_clear(ui_services, make_ui_app):
    seed_users(ui_services, 6)  # newest first: row i is user00(5 - i)
    app = make_ui_app()

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        await pilot.press("space")  # marks user005, moves down
        assert emails_of(screen) == {"user005@example.com"} and table.cursor_row == 1
        assert table.render_line(1).text.startswith(MARK)  # the gutter shows it
        assert not table.render_line(2).text.startswith(MARK)
        await pilot.press("shift+down")  # marks this row and the next
        assert emails_of(screen) == {f"user00{i}@example.com" for i in (5, 4, 3)}
        await pilot.press("down", "down", "V")  # from the last mark (row 2) to row 4
        assert emails_of(screen) == {f"user00{i}@example.com" for i in (5, 4, 3, 2, 1)}
        assert "5 marked" in text_of(screen.query_one("#status-line"))
        await pilot.press("space")  # toggles: unmarks user001
        assert "user001@example.com" not in emails_of(screen) and len(screen.marks) == 4
        await pilot.press("shift+up")  # on user000: marks it and user001 above
        assert len(screen.marks) == 6 and table.cursor_row == 4
        await pilot.press("slash", *"user00", "escape")  # marks stay over a search
        await settle(pilot)
        assert len(screen.marks) == 6
        await pilot.press("escape")  # in the table, with marks: clears them
        assert not screen.marks and "marked" not in text_of(screen.query_one("#status-line"))

    run_console(app, scenario)


def test_a_range_reaches_rows_not_fetched(ui_services, make_ui_app):
    seed_users(ui_services, 80)
    app = make_ui_app(page_size=5)

    async def scenario(pilot):
        screen = app.screen
        table = screen.query_one("#users", LazyTable)
        table.max_pages = table.cache.max_pages = 2
        await pilot.press("space", "end")
        await settle(pilot)
        assert any(table.row(i) is None for i in range(80))  # not all rows are here
        await pilot.press("V")
        await settle(pilot)
        assert len(screen.marks) == 80

    run_console(app, scenario)


def test_bulk_lock_asks_once_and_counts_a_user_deleted_meanwhile(services, make_app, operator, ctx):
    users = seed_users(services, 4)  # rows: user003, user002, user001, user000
    app = make_app()

    async def scenario(pilot):
        screen = app.screen
        await pilot.press("space", "space", "space")
        services.users.delete(operator, ctx, str(users[2].id))  # user002: elsewhere
        before = len(toasts(app))
        await pilot.press("l")
        dialog = app.screen
        assert isinstance(dialog, ConfirmScreen)
        assert dialog.title_text == "Lock 3 users?"
        assert "user003@example.com, user002@example.com, user001@example.com" in dialog.message
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen
        assert toasts(app)[before:] == [
            "Locked 2 of 3; 1 failed: user002@example.com (deleted elsewhere)."
        ]
        assert emails_of(screen) == {"user002@example.com"}  # the failed one stays marked
        assert screen.bulk_running is None

    run_console(app, scenario)
    locked = {u.email for u in services.user_reads.list(operator, {"status": "locked"}).data}
    assert locked == {"user003@example.com", "user001@example.com"}
    events = services.audit.query(operator, {"action": "user.locked"}).data
    assert len(events) == 2 and len({e.request_id for e in events}) == 1  # one action


def test_bulk_unlock_sign_out_delete_and_restore(services, make_app, operator, ctx):
    users = seed_users(services, 2)
    ids = [str(u.id) for u in users]
    services.users.bulk(operator, ctx, "lock", ids)
    app = make_app()

    async def act(pilot, key: str, title: str, told: str) -> None:
        await pilot.press("home", "space", "space", key)
        assert isinstance(app.screen, ConfirmScreen) and app.screen.title_text == title
        await pilot.press("y")
        await settle(pilot)
        assert toasts(app)[-1] == told
        assert not app.screen.marks

    async def scenario(pilot):
        await act(pilot, "l", "Unlock 2 users?", "Unlocked 2 of 2.")  # all locked: unlock
        await act(pilot, "s", "Sign out 2 users?", "Signed out 2 of 2.")
        await act(pilot, "d", "Delete 2 users?", "Deleted 2 of 2.")
        assert app.screen.query_one("#users").row_count == 0
        await pilot.press("x")
        await settle(pilot)
        await act(pilot, "r", "Restore 2 users?", "Restored 2 of 2.")

    run_console(app, scenario)
    live = services.user_reads.list(operator).data
    assert {u.email for u in live} == {u.email for u in users}
    assert all(u.status != "locked" for u in live)
    actions = [e.action for e in services.audit.query(operator, {"target_id": ids[0]}).data]
    assert actions[:4] == ["user.restored", "user.deleted", "session.revoked", "user.unlocked"]


def test_a_refused_bulk_is_not_applied(services, make_app, operator):
    seed_users(services, 2)
    app = make_app()

    async def scenario(pilot):
        await pilot.press("space", "space", "d")
        assert app.screen.title_text == "Delete 2 users?"
        await pilot.press("n")
        await settle(pilot)
        assert len(app.screen.marks) == 2

    run_console(app, scenario)
    assert services.user_reads.list(operator).meta.total == 2


def test_marks_follow_changes_made_elsewhere_and_a_deleted_one_is_said(
    ui_services, make_ui_app, operator, ctx
):
    users = seed_users(ui_services, 3)  # rows: user002, user001, user000
    ui_services.users.delete(operator, ctx, str(users[0].id))
    app = make_ui_app()

    async def scenario(pilot):
        screen = app.screen
        await pilot.press("space", "space")
        ui_services.users.bulk(operator, ctx, "lock", [str(users[2].id), str(users[1].id)])
        screen.auto_refresh()
        await settle(pilot)
        await pilot.press("l")  # every marked user is locked now: l unlocks them
        assert app.screen.title_text == "Unlock 2 users?"
        await pilot.press("n", "x")
        await settle(pilot)
        await pilot.press("end", "space", "l")  # user000, deleted here, shown with x
        assert app.screen.title_text == "Lock 3 users?"  # one is not locked
        await pilot.press("y")
        await settle(pilot)
        assert toasts(app)[-1] == "Locked 2 of 3; 1 failed: user000@example.com (deleted)."

    run_console(app, scenario)


def test_a_bulk_action_shows_its_progress_in_the_status_line(ui_services, make_ui_app, monkeypatch):
    from usermgmt.tui.screens import bulk

    monkeypatch.setattr(bulk, "CHUNK", 1)  # one core call per user: a step each
    seed_users(ui_services, 3)
    app = make_ui_app()

    async def scenario(pilot):
        screen = app.screen
        shown: list[str | None] = []
        status_line = screen.query_one("#status-line")
        original = screen.bulk_progress

        def progress(text):
            original(text)
            shown.append(text)
            if text:
                assert text in text_of(status_line)

        screen.bulk_progress = progress
        await pilot.press("space", "space", "space", "s", "y")
        await settle(pilot)
        assert shown == [
            "Signing out… 0 of 3",
            "Signing out… 1 of 3",
            "Signing out… 2 of 3",
            "Signing out… 3 of 3",
            None,
        ]
        assert toasts(app)[-1] == "Signed out 3 of 3."

    run_console(app, scenario)
