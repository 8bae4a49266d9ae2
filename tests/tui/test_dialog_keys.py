"""The dialog keys at work: a question takes y or ctrl+s, n or esc (and enter presses the
focused Cancel); the lock dialog starts in its minutes field. That every dialog has these
keys and names them on its buttons is checked in test_fit.py."""

from __future__ import annotations

from textual.widgets import Input

from usermgmt.core.context import Actor
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.lock import LockScreen

from .tui_helpers import run_console, seed_users, settle, wait_until

OPERATOR = Actor.operator("cli", "test")


def test_a_confirmation_takes_y_or_ctrl_s_and_n_or_escape(make_app, services):
    users = seed_users(services, 2)
    app = make_app()

    def deleted() -> int:
        return sum(
            services.user_reads.get(OPERATOR, str(u.id), include_deleted=True).deleted_at
            is not None
            for u in users
        )

    async def scenario(pilot):
        for refuse in ("n", "escape", "enter"):  # enter: Cancel has the focus
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(refuse)
            await settle(pilot)
            assert not isinstance(app.screen, ConfirmScreen) and deleted() == 0
        for count, accept in enumerate(("ctrl+s", "y"), 1):
            await pilot.press("d")
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press(accept)
            await settle(pilot)
            await wait_until(pilot, lambda n=count: deleted() == n, f"deleted with {accept}")

    run_console(app, scenario, size=(80, 24))


def test_the_lock_dialog_starts_in_its_minutes_field(make_app, services):
    (user,) = seed_users(services, 1)
    app = make_app()

    async def scenario(pilot):
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)
        focused = app.focused
        assert isinstance(focused, Input) and focused.id == "minutes"
        await pilot.press("3", "0", "ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, LockScreen)

    run_console(app, scenario, size=(80, 24))
    locked = services.user_reads.get(OPERATOR, str(user.id))
    assert locked.locked_until is not None
    minutes = (locked.locked_until - services.clock.now()).total_seconds() / 60
    assert 29 < minutes <= 30
