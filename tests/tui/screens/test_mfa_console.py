"""Two-step sign-in in the embedded console (usermgmt.tui.screens.mfa_manage): the operator
has no account, so the palette says where to set it up instead; and the terminal QR code
(usermgmt.tui.widgets.qr) is segno's matrix, small enough for 80x24. The remote console's
enrolment and login are tested against a live server in tests/client/test_console_mfa.py."""

from __future__ import annotations

import pyotp
import pytest
import segno

from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets import qr

from ..tui_helpers import run_console, settle, text_of


def titles(app) -> list[str]:
    return [c.title for c in app.get_system_commands(app.screen)]


def test_the_embedded_console_explains_that_enrolment_is_a_persons_own(make_ui_app):
    app = make_ui_app()

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        offered = titles(app)
        assert "Set up two-step sign-in" in offered
        assert "Disable two-step sign-in…" not in offered and "New recovery codes" not in offered
        await pilot.press("ctrl+p")
        await pilot.press(*"two-step")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MessageScreen)
        said = text_of(app.screen.query_one(".dialog-body"))
        assert "no account" in said and "usermgmt login" in said
        await pilot.press("escape")
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario)


def decode(lines: list[str]) -> list[list[int]]:
    """Rows of modules (1 dark) from segno's half-block drawing (light is the block)."""
    top = {" ": 1, "▀": 0, "▄": 1, "█": 0}
    bottom = {" ": 1, "▀": 1, "▄": 0, "█": 0}
    return [row for line in lines for row in ([top[c] for c in line], [bottom[c] for c in line])]


@pytest.mark.parametrize("border", [1, 2])
def test_the_drawn_qr_code_is_segnos_matrix_of_the_whole_uri(border):
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(
        name="ada.lovelace@example.com", issuer_name="usermgmt (users.example.com)"
    )
    assert "".join(qr.segments(uri)) == uri
    lines = qr.half_blocks(uri, border)
    expected = segno.make(qr.segments(uri), error="l", micro=False)
    size = expected.symbol_size(border=border)[1]
    assert decode(lines)[:size] == [list(r) for r in expected.matrix_iter(border=border)]
    assert {len(line) for line in lines} == {size}


def test_a_usual_otpauth_uri_fits_24_rows():
    uri = pyotp.TOTP(pyotp.random_base32()).provisioning_uri(
        name="grace.hopper@example.com", issuer_name="usermgmt (users.example.com)"
    )
    assert len(uri) > 140
    drawn = qr.QrCode(uri, max_rows=24)
    assert len(drawn.lines) <= 24 and len(drawn.lines[0]) <= 50  # leaves 30 columns of text
    assert len(qr.QrCode(uri, max_rows=50).lines) > len(drawn.lines)  # a wider quiet zone
