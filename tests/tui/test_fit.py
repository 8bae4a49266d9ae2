"""Every screen and dialog at 80x24: Tab and shift+Tab reach every control, each in view
once focused; the footer shows the keys of the screen in front, whole and by priority;
every dialog has the same keys (ctrl+s, esc; y and n in a question) and its buttons name
them."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer

from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.screens.actions import USER_ACTION_BINDINGS
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.error import ErrorScreen
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.screens.mfa_codes import RecoveryCodesScreen
from usermgmt.tui.screens.mfa_login import LoginScreen
from usermgmt.tui.screens.mfa_manage import MfaDisableScreen, RecoveryCodesRenewScreen
from usermgmt.tui.screens.mfa_setup import MfaSetupScreen
from usermgmt.tui.widgets.form import FormField
from usermgmt.tui.widgets.qr import QrCode

from .own_account import RECOVERY_CODES, OwnAccount
from .tui_helpers import run_console, seed_users, settle, text_of, toasts

SMALL = (80, 24)


def _push(factory):
    async def push(pilot):
        pilot.app.push_screen(factory())

    return push


# How an operator reaches each dialog from the users screen (the first user highlighted).
DIALOGS = {
    "new_user": ("n",),
    "edit_user": ("e",),
    "roles": ("g",),
    "lock": ("l",),
    "password": ("p",),
    "confirm_delete": ("d",),
    "goto": ("colon",),
    "help": ("question_mark",),
    "event": ("enter", "enter"),
    "new_api_key": ("enter", "K"),
    "new_webhook": ("w", "n"),
    "message": (_push(lambda: MessageScreen("Made", "Copy it now.\n\n" + "s" * 60)),),
    "error": (_push(lambda: ErrorScreen("inc-0001", "KeyError")),),
}
SCREENS = {"users": (), "detail": ("enter",), "audit": ("a",), "webhooks": ("w",)}


async def go(pilot, steps) -> None:
    await settle(pilot)
    for step in steps:
        if callable(step):
            await step(pilot)
        else:
            await pilot.press(step)
        await settle(pilot)


def in_view(widget: Widget) -> bool:
    """Wholly on the screen, inside every scrolling ancestor's window, under no docked
    widget (a dialog's title or buttons, the footer) but its own ancestors."""
    screen, region = widget.screen, widget.region
    if not region or region not in screen.region:
        return False
    for ancestor in widget.ancestors:
        scrolls = isinstance(ancestor, Widget) and ancestor.allow_vertical_scroll
        if scrolls and region not in ancestor.scrollable_content_region:
            return False
    mine = set(widget.ancestors_with_self)
    docked = [
        w
        for w in screen.query("*")
        if w.styles.dock != "none" and w not in mine and widget not in w.ancestors
    ]
    return not any(d.display and d.region.overlaps(region) for d in docked if d.region)


async def tab_through(pilot, key: str) -> list[Widget]:
    """Press ``key`` once per control (and once more): what got the focus, in order,
    each checked to be in view when it did."""
    screen = pilot.app.screen
    chain = list(screen.focus_chain)
    seen: list[Widget] = []
    for _ in range(len(chain) + 1):
        await pilot.press(key)
        await pilot.pause()  # the dialog scrolls the focused control into view after a refresh
        focused = screen.focused
        assert focused is not None
        assert in_view(focused), f"{focused!r} at {focused.region} is not in view"
        seen.append(focused)
    assert set(seen) == set(chain), f"not reached with {key}: {set(chain) - set(seen)}"
    return seen


OPENER_ACTIONS = {b.action for b in USER_ACTION_BINDINGS} | {"audit", "webhooks", "back"}
SHOWS_ONLY = {"help", "event", "message", "error"}  # nothing to confirm: they only close
KEY_NAMES = {"esc": "escape"}


def check_dialog_keys(name: str, dialog) -> None:
    keys = set(dialog._bindings.key_to_bindings)
    assert "escape" in keys
    if name not in SHOWS_ONLY:
        assert "ctrl+s" in keys
    if isinstance(dialog, ConfirmScreen):
        assert {"y", "n"} <= keys
    for button in dialog.query(Button):
        named = re.search(r"\(([^)]+)\)$", str(button.label))
        assert named, f"{button.label} names no key"
        assert KEY_NAMES.get(named[1], named[1]) in keys, f"{button.label}: not bound"


@pytest.mark.parametrize("name", [*DIALOGS, *SCREENS])
def test_every_control_reached_in_view_at_80x24(name, make_ui_app, ui_services):
    """Tab and shift+Tab; a dialog's footer shows its own keys, not its opener's, and
    its keys are those of every dialog."""
    seed_users(ui_services, 2)
    app = make_ui_app()

    async def scenario(pilot):
        await go(pilot, (DIALOGS | SCREENS)[name])
        screen = app.screen
        if name == "detail":  # says how to reach its tables
            hint = text_of(screen.query_one("#detail-hint"))
            assert all(word in hint for word in ("tab", "sessions", "events", "enter"))
        if name in DIALOGS:
            assert isinstance(screen, ModalScreen)
            check_dialog_keys(name, screen)
            actions = {k.action for k in check_footer(screen)}
            assert actions and not actions & OPENER_ACTIONS
            assert actions & {"cancel", "close"}  # the way out is always shown
        assert app.focused is None or in_view(app.focused)
        buttons = list(screen.query(Button))
        forward = await tab_through(pilot, "tab")
        assert all(b in forward for b in buttons)  # the buttons too
        await tab_through(pilot, "shift+tab")
        if name in DIALOGS:  # and esc leaves it
            await pilot.press("escape")
            await settle(pilot)
            assert not isinstance(app.screen, ModalScreen)

    run_console(app, scenario, size=SMALL)


def footer_keys(screen) -> list[Widget]:
    footer = screen.query_one(Footer)
    return [k for k in footer.query("FooterKey") if k.display]


def check_footer(screen, *, left: int = 0) -> list[Widget]:
    """The footer is on the last line, from ``left`` (0 but beside the enrolment's QR code)
    to the right edge, and its keys are whole: side by side, none over another, none past
    the right edge."""
    footer = screen.query_one(Footer)
    width, height = screen.size
    assert footer.region.y == height - 1
    assert (footer.region.x, footer.region.right) == (left, width)
    keys = footer_keys(screen)
    edges = sorted((k.region.x, k.region.right) for k in keys)
    assert all(right <= width for _x, right in edges)
    assert all(a_right <= b_x for (_a, a_right), (b_x, _b) in pairwise(edges))
    for key in keys:
        shown = key.key_display + (f" {key.description}" if key.description else "")
        assert key.region.width >= len(shown), f"{shown!r} is cut"
    return keys


@pytest.mark.parametrize("name", list(SCREENS))
def test_the_footer_keeps_whole_keys_by_priority_at_80_columns(name, make_ui_app, ui_services):
    seed_users(ui_services, 1)
    app = make_ui_app()
    pinned = {"help", "app.help", "command_palette"}

    async def scenario(pilot):
        await go(pilot, SCREENS[name])
        narrow = [k.action for k in check_footer(app.screen)]
        await pilot.resize_terminal(200, 50)
        await settle(pilot)
        wide = [k.action for k in check_footer(app.screen)]
        assert "command_palette" in wide and set(narrow) <= set(wide)
        # ? stays (it lists every key); the others are left out from the end, the
        # least important first, the palette's before any.
        assert narrow == wide or narrow[-1] in ("help", "app.help")
        kept = [a for a in narrow if a not in pinned]
        assert kept == [a for a in wide if a not in pinned][: len(kept)]

    run_console(app, scenario, size=SMALL)


# The remote console's two-step sign-in, each with what it shows fixed (own_account.py),
# and the action of the way out its footer shows.
TWO_STEP = {
    "mfa_setup": (MfaSetupScreen, "later"),
    "mfa_setup_required": (lambda ctx: MfaSetupScreen(ctx, required=True), "quit"),
    "mfa_login": (LoginScreen, "leave"),
    "mfa_login_back": (lambda ctx: LoginScreen(ctx, reason="Refused.", back=True), "cancel"),
    "mfa_codes": (lambda ctx: RecoveryCodesScreen(RECOVERY_CODES), "close"),
    "mfa_disable": (MfaDisableScreen, "cancel"),
    "mfa_new_codes": (RecoveryCodesRenewScreen, "cancel"),
}
ESC_STAYS = {"mfa_setup_required", "mfa_codes"}  # esc says why instead (docs/tui.md)
# What ? says esc does on the two full screens: the one meaning that applies.
ESC_HELP = {
    "mfa_setup": "Later",
    "mfa_setup_required": "Why not later",
    "mfa_login": "Quit",
    "mfa_login_back": "Back",
}


def own_keys(help_screen) -> list[tuple[str, str]]:
    """(key, description) of each row of the help's first section: the screen's own."""
    rows = []
    for widget in list(help_screen.query(".help-section, .help-row"))[1:]:
        if widget.has_class("help-section"):
            break
        key, description = text_of(widget).split(maxsplit=1)
        rows.append((key, description))
    return rows


@pytest.mark.parametrize("name", list(TWO_STEP))
def test_the_two_step_screens_fit_80x24_and_have_the_dialog_keys(name, ui_services, tmp_path):
    """As every dialog above, and: the enrolment's QR code whole on the left, its footer
    beside it; ctrl+s sends (here: says what is missing); esc leaves, but for the two
    that say why first."""
    app = UserMgmtApp(OwnAccount(ui_services, tmp_path / "contexts"), os_user="tester")
    factory, way_out = TWO_STEP[name]

    async def scenario(pilot):
        app.push_screen(factory(app.ctx))
        await settle(pilot)
        screen = app.screen
        check_dialog_keys(name, screen)
        beside = 0
        if isinstance(screen, MfaSetupScreen):
            drawing = screen.query_one("#qr", QrCode)
            assert len(drawing.lines) == SMALL[1] and in_view(drawing)
            beside = drawing.region.right
        keys = check_footer(screen, left=beside)
        actions = {k.action for k in keys}
        assert way_out in actions and not actions & OPENER_ACTIONS
        assert app.focused is None or in_view(app.focused)
        buttons = list(screen.query(Button))
        forward = await tab_through(pilot, "tab")
        assert all(b in forward for b in buttons)
        await tab_through(pilot, "shift+tab")
        if name in ESC_HELP:
            await pilot.press("f1")  # ? would be typed into the focused field
            await settle(pilot)
            assert [d for k, d in own_keys(app.screen) if k == "escape"] == [ESC_HELP[name]]
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is screen
        fields = list(screen.query(FormField))
        if fields:  # nothing typed: ctrl+s says so under a field, and sends nothing
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.screen is screen and any(f.error for f in fields)
        if name in ESC_STAYS:
            await pilot.press("escape")
            await settle(pilot)
            assert app.screen is screen and toasts(app, "warning")
            if name != "mfa_codes":
                return
            close = next(k for k in footer_keys(screen) if k.action == "close")
            assert close.has_class("-disabled")  # shown dimmed until ticked
            screen.query_one("#stored").value = True
            await settle(pilot)
            close = next(k for k in footer_keys(screen) if k.action == "close")
            assert not close.has_class("-disabled")
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is not screen

    run_console(app, scenario, size=SMALL)
