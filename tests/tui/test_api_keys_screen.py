"""The detail screen's kind and API keys: create (the secret shown once), revoke (asks
first), and service accounts marked in the list (both databases)."""

from __future__ import annotations

import pytest
from textual.widgets import SelectionList

from usermgmt.core.context import RequestContext
from usermgmt.core.errors import AuthenticationError
from usermgmt.tui.screens.api_keys import KeyFormScreen
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.detail import DetailScreen
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.widgets.form import FormField

from .tui_helpers import run_console, settle, text_of, toasts


def _service_account(services, operator, ctx):
    return services.users.create(
        operator,
        ctx,
        {"email": "ops@example.com", "username": "purge-bot", "kind": "service"},
    )


def test_create_a_key_shows_the_secret_once_then_revoke_it(services, make_app, operator, ctx):
    bot = _service_account(services, operator, ctx)
    app = make_app()
    shown: dict[str, str] = {}

    async def scenario(pilot):
        assert app.screen.query_one("#users").cursor_value.kind == "service"
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert "service account" in text_of(detail.query_one("#profile"))
        assert detail.query_one("#keys").row_count == 0

        await pilot.press("K")
        form = app.screen
        assert isinstance(form, KeyFormScreen)
        await pilot.press("ctrl+s")  # no name, no scope: the core's refusal lands inline
        await settle(pilot)
        assert app.screen is form
        assert form.query_one("#field-name", FormField).error
        assert form.query_one("#field-scopes", FormField).error
        form.query_one("#key-name").value = "nightly"
        form.query_one("#key-scopes", SelectionList).select("maintenance")
        form.query_one("#key-expires").value = "30"
        await pilot.press("ctrl+s")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, MessageScreen)
        body = dialog.message
        shown["secret"] = next(w for w in body.split() if w.startswith("umk_"))
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is detail
        keys = detail.query_one("#keys")
        assert keys.row_count == 1
        row = keys.get_row_at(0)
        assert str(row[0]) == "nightly"
        assert row[3] == "active" and shown["secret"] not in " ".join(map(str, row))

        keys.focus()
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert detail.query_one("#keys").get_row_at(0)[3] == "revoked"
        assert any("Revoked the API key nightly." in m for m in toasts(app))

    run_console(app, scenario)
    (key,) = services.api_keys.list(operator, {"user_id": str(bot.id)}).data
    assert key.state == "revoked" and key.scopes == ["maintenance"]
    assert key.expires_at is not None
    assert shown["secret"].startswith(key.prefix)
    # The secret the dialog showed was the key's (it works no more).
    with pytest.raises(AuthenticationError, match="revoked"):
        services.api_keys.authenticate(shown["secret"], RequestContext(ip="127.0.0.1"))
