"""A name the core refuses (a bidirectional override) is shown under its field."""

from __future__ import annotations

from usermgmt.tui.screens.user_form import UserFormScreen
from usermgmt.tui.widgets.form import FormField

from .tui_helpers import run_console, settle, toasts


def test_new_user_form_shows_a_refused_name_inline(services, make_app, operator):
    app = make_app()

    async def scenario(pilot):
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, UserFormScreen)
        form.query_one("#in-email").value = "ada@example.com"
        form.query_one("#in-first_name").value = "Ada\u202egnp.exe"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form  # still open, nothing lost
        error = form.query_one("#field-first_name", FormField).error
        assert "control characters or bidirectional overrides" in error
        assert form.query_one("#in-first_name").value == "Ada\u202egnp.exe"
        assert not toasts(app, "warning")  # inline, not a toast

    run_console(app, scenario)
    assert services.user_reads.list(operator).meta.total == 0
