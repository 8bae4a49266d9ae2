"""The footer follows the keys that apply, and is not rebuilt when they did not change."""

from __future__ import annotations

from textual.widgets import Footer

from usermgmt.tui.screens.audit import AuditScreen

from .tui_helpers import run_console, seed_users, settle


def footer_words(app) -> list[str]:
    return [key.description for key in app.screen.query_one(Footer).query("FooterKey")]


def test_the_footer_changes_with_its_keys_and_only_then(services, make_app, operator, ctx):
    users = seed_users(services, 2)
    services.users.lock(operator, ctx, str(users[0].id))  # the older one: second row
    app = make_app(refresh_seconds=0)

    async def scenario(pilot):
        footer = app.screen.query_one(Footer)
        assert "Lock" in footer_words(app) and "Unlock" not in footer_words(app)
        await pilot.press("down")
        await settle(pilot)
        assert "Unlock" in footer_words(app) and "Lock" not in footer_words(app)
        rebuilt = []
        recompose = footer.recompose

        async def counted():
            rebuilt.append(1)
            await recompose()

        footer.recompose = counted
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, AuditScreen)
        await pilot.press("escape")
        await settle(pilot)
        assert rebuilt == []  # the same keys as before: not rebuilt
        assert "Unlock" in footer_words(app)
        await pilot.press("up")
        await settle(pilot)
        assert rebuilt == [1] and "Lock" in footer_words(app)

    run_console(app, scenario)
