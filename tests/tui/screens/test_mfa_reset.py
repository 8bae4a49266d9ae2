"""The console's detail screen (usermgmt.tui.screens.detail) shows a user's second factor
and resets it after asking, through the core (usermgmt.core.services.mfa)."""

from __future__ import annotations

import pyotp

from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.detail import DetailScreen

from ..tui_helpers import STRONG_PASSWORD, run_console, settle, text_of, toasts


def test_reset_the_second_factor_from_the_detail_screen(services, make_app, operator, ctx):
    user = services.users.create(
        operator, ctx, {"email": "ada@example.com", "password": STRONG_PASSWORD, "roles": ["user"]}
    )
    signed_in = services.auth.login(ctx, {"email": user.email, "password": STRONG_PASSWORD})
    actor = services.auth.authenticate_token(signed_in.tokens.access_token)
    secret = services.mfa.setup(actor, ctx).secret
    services.mfa.confirm(actor, ctx, {"code": pyotp.TOTP(secret).at(services.clock.now())})

    app = make_app()

    async def scenario(pilot):
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert "Second factor  on (TOTP)" in text_of(detail.query_one("#profile"))
        await pilot.press("m")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert any("Reset the second factor of ada@example.com" in m for m in toasts(app))
        assert "Second factor  off" in text_of(detail.query_one("#profile"))

    run_console(app, scenario)
    assert services.mfa.status(operator, str(user.id)).mfa_enabled is False
    assert services.sessions.list(operator, str(user.id)) == []
