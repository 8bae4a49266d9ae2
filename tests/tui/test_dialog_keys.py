"""The same keys in every dialog: ctrl+s does what the dialog is for, esc cancels (y and n
too where nothing is typed), each button names its key; the lock dialog starts in its
minutes field."""

from __future__ import annotations

import re

import pytest
from textual.screen import ModalScreen
from textual.widgets import Button, Input

from usermgmt.core.context import Actor
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.lock import LockScreen

from .test_fit import DIALOGS, go
from .tui_helpers import run_console, seed_users, settle, wait_until

OPERATOR = Actor.operator("cli", "test")
SHOWS_ONLY = {"help", "event", "message", "error"}  # nothing to confirm: they only close
KEY_NAMES = {"esc": "escape"}


def bound_keys(screen) -> set[str]:
    return {key for key in screen._bindings.key_to_bindings}


@pytest.mark.parametrize("name", list(DIALOGS))
def test_every_dialog_has_the_same_keys_and_its_buttons_name_them(name, make_ui_app, ui_services):
    seed_users(ui_services, 1)
    app = make_ui_app()

    async def scenario(pilot):
        await go(pilot, DIALOGS[name])
        dialog = app.screen
        assert isinstance(dialog, ModalScreen)
        keys = bound_keys(dialog)
        assert "escape" in keys
        if name not in SHOWS_ONLY:
            assert "ctrl+s" in keys
        if isinstance(dialog, ConfirmScreen):
            assert {"y", "n"} <= keys
        for button in dialog.query(Button):
            named = re.search(r"\(([^)]+)\)$", str(button.label))
            assert named, f"{button.label} names no key"
            assert KEY_NAMES.get(named[1], named[1]) in keys, f"{button.label}: not bound"
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not dialog and not isinstance(app.screen, ModalScreen)

    run_console(app, scenario, size=(80, 24))


def test_a_confirmation_takes_y_or_ctrl_s_and_n_or_escape(make_ui_app, ui_services):
    users = seed_users(ui_services, 2)
    app = make_ui_app()

    def deleted() -> int:
        return sum(
            ui_services.user_reads.get(OPERATOR, str(u.id), include_deleted=True).deleted_at
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


def test_the_lock_dialog_starts_in_its_minutes_field(make_ui_app, ui_services):
    (user,) = seed_users(ui_services, 1)
    app = make_ui_app()

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
    locked = ui_services.user_reads.get(OPERATOR, str(user.id))
    assert locked.locked_until is not None
    minutes = (locked.locked_until - ui_services.clock.now()).total_seconds() / 60
    assert 29 < minutes <= 30
