"""Every action on a user, driven by keys, checked in the core and in the audit log."""

from __future__ import annotations

from usermgmt.core.context import RequestContext
from usermgmt.core.errors import NotFound
from usermgmt.core.models import User
from usermgmt.core.passwords import verify_password
from usermgmt.core.services import credentials
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.detail import DetailScreen
from usermgmt.tui.screens.lock import LockScreen
from usermgmt.tui.screens.password import PasswordScreen
from usermgmt.tui.screens.roles import RolesScreen
from usermgmt.tui.screens.user_form import UserFormScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets.form import FormField

from ..tui_helpers import (
    STRONG_PASSWORD,
    run_console,
    seed_users,
    settle,
    text_of,
    toasts,
    wait_until,
)


def last_event(services, operator, user_id):
    return services.audit.query(operator, {"target_id": str(user_id), "limit": 1}).data[0]


async def type_into(pilot, selector: str, text: str) -> None:
    """Focus the input and type: all but the last character are pasted (each pressed key
    costs the pilot an idle wait), the last is a real key press."""
    box = pilot.app.screen.query_one(selector)
    box.focus()
    await pilot.pause()
    box.value = text[:-1]
    box.cursor_position = len(box.value)
    await pilot.press(text[-1])


def test_create_user_through_the_form(services, make_app, operator):
    seed_users(services, 3)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("down", "down")
        await pilot.press("n")
        assert isinstance(app.screen, UserFormScreen)
        await type_into(pilot, "#in-email", "new@example.com")
        await type_into(pilot, "#in-username", "newbie")
        await type_into(pilot, "#in-password", STRONG_PASSWORD)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        table = app.screen.query_one("#users")
        assert table.cursor_value.email == "new@example.com"  # the cursor follows
        created = services.user_reads.find(operator, "new@example.com")
        assert created.username == "newbie" and created.roles == ["user"]
        event = last_event(services, operator, created.id)
        assert event.action == "user.created" and event.actor_label == "tui:tester"
        assert event.request_id.startswith("tui-")
        assert "Created new@example.com." in toasts(app)
        assert STRONG_PASSWORD not in str(event.changes)

    run_console(app, scenario)


def test_create_shows_validation_errors_inline(services, make_app, operator):
    app = make_app()

    async def scenario(pilot):
        await pilot.press("n")
        await type_into(pilot, "#in-email", "not-an-email")
        await type_into(pilot, "#in-username", "X!")
        await pilot.press("ctrl+s")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, UserFormScreen)  # still open, nothing lost
        assert "@-sign" in form.query_one("#field-email", FormField).error
        assert "3-50 characters" in form.query_one("#field-username", FormField).error
        assert form.query_one("#in-email").value == "not-an-email"
        assert not toasts(app, "warning")  # inline, not a toast
        # A weak password is the core's policy, shown under the password.
        form.query_one("#in-email").value = "ok@example.com"
        form.query_one("#in-username").value = ""
        await type_into(pilot, "#in-password", "short")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "at least 8 characters" in form.query_one("#field-password", FormField).error
        assert not form.query_one("#field-email", FormField).error

    run_console(app, scenario)
    assert services.user_reads.list(operator).meta.total == 0


def test_create_with_a_taken_email_is_a_conflict(services, make_app):
    seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("n")
        await type_into(pilot, "#in-email", "user000@example.com")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UserFormScreen)
        assert "already registered" in app.screen.query_one("#field-email", FormField).error
        assert any("already registered" in m for m in toasts(app, "warning"))

    run_console(app, scenario)


def test_edit_sends_only_what_changed(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("e")
        form = app.screen
        assert isinstance(form, UserFormScreen)
        assert form.query_one("#in-email").value == user.email
        await type_into(pilot, "#in-first_name", "Ada")
        await type_into(pilot, "#in-profile-timezone", "Europe/London")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario)
    after = services.user_reads.get(operator, str(user.id))
    assert after.first_name == "Ada" and after.profile.timezone == "Europe/London"
    event = last_event(services, operator, user.id)
    assert event.action == "user.updated"
    assert set(event.changes) == {"first_name", "profile.timezone"}


def test_edit_validation_error_inline(services, make_app):
    seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("e")
        await type_into(pilot, "#in-profile-phone", "call me")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UserFormScreen)
        assert app.screen.query_one("#field-profile-phone", FormField).error

    run_console(app, scenario)


def test_delete_asks_first_then_restore(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # changed my mind
        await settle(pilot)
        assert services.user_reads.get(operator, str(user.id)).deleted_at is None
        await pilot.press("d")
        await pilot.press("enter")  # Enter alone is Cancel: the safe default
        await settle(pilot)
        assert services.user_reads.get(operator, str(user.id)).deleted_at is None
        await pilot.press("d", "y")
        await settle(pilot)
        table = app.screen.query_one("#users")
        assert table.row_count == 0
        await pilot.press("x")  # show deleted
        await settle(pilot)
        assert table.cursor_value.deleted_at is not None
        assert "deleted" in text_of(app.screen.query_one("#status-line"))
        await pilot.press("r")
        await settle(pilot)
        assert table.cursor_value.deleted_at is None

    run_console(app, scenario)
    assert services.user_reads.get(operator, str(user.id)).deleted_at is None
    events = services.audit.query(operator, {"target_id": str(user.id)}).data
    assert [e.action for e in events[:2]] == ["user.restored", "user.deleted"]
    assert {e.actor_label for e in events[:2]} == {"tui:tester"}


def test_lock_for_minutes_then_unlock(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("l")
        assert isinstance(app.screen, LockScreen)
        await type_into(pilot, "#minutes", "0")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, LockScreen)  # the core refuses 0 minutes
        assert "between 1 and" in app.screen.query_one("#field-minutes", FormField).error
        await type_into(pilot, "#minutes", "30")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        locked = services.user_reads.get(operator, str(user.id))
        assert locked.locked_until is not None
        table = app.screen.query_one("#users")
        await wait_until(pilot, lambda: table.cursor_value.locked_until, "reload")
        await pilot.press("l")  # now it unlocks, without asking
        await settle(pilot)
        assert services.user_reads.get(operator, str(user.id)).locked_until is None

    run_console(app, scenario)
    actions = [e.action for e in services.audit.query(operator, {"target_id": str(user.id)}).data]
    assert actions[:2] == ["user.unlocked", "user.locked"]


def test_set_password_masked_and_checked(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("p")
        form = app.screen
        assert isinstance(form, PasswordScreen)
        assert form.query_one("#new-password").password  # masked
        await type_into(pilot, "#new-password", "Weakpass")
        await type_into(pilot, "#repeat-password", "Different1")
        await pilot.press("ctrl+s")
        assert "differ" in form.query_one("#field-repeat", FormField).error
        form.query_one("#repeat-password").value = "Weakpass"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "digit" in form.query_one("#field-password", FormField).error
        form.query_one("#new-password").value = STRONG_PASSWORD
        form.query_one("#repeat-password").value = STRONG_PASSWORD
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario)
    event = last_event(services, operator, user.id)
    assert event.action == "user.password_set" and event.actor_label == "tui:tester"
    with services.db.read() as s:
        assert verify_password(STRONG_PASSWORD, s.get(User, user.id).password_hash)


def test_send_reset_link(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("p", "ctrl+l")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        assert f"Reset link queued for {user.email}." in toasts(app)

    run_console(app, scenario)
    assert last_event(services, operator, user.id).action == "user.reset_requested"


def test_grant_and_revoke_roles(services, make_app, operator):
    (user,) = seed_users(services, 1)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("g")
        assert isinstance(app.screen, RolesScreen)
        await pilot.click("#role-admin")
        await pilot.click("#role-user")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        assert any("granted admin; revoked user" in m for m in toasts(app))

    run_console(app, scenario)
    assert services.user_reads.get(operator, str(user.id)).roles == ["admin"]
    event = last_event(services, operator, user.id)
    assert event.changes["roles"] == {"before": ["user"], "after": ["admin"]}


def test_the_last_admin_keeps_the_role(services, make_app, admin_user):
    app = make_app()

    async def scenario(pilot):
        await pilot.press("g")
        await pilot.click("#role-admin")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, RolesScreen)  # still open: nothing changed
        assert any("last active admin" in m for m in toasts(app, "warning"))

    run_console(app, scenario)


def open_session(services, user_id) -> None:
    """A live session, as a login leaves (opened directly: the test is about revoking)."""
    with services.db.write() as s:
        credentials.open_session(
            s,
            services.settings,
            services.keys.jwt_key(),
            s.get(User, user_id),
            RequestContext(ip="127.0.0.1", user_agent="pytest"),
            now=services.clock.now(),
            ids=services.ids,
        )


def test_revoke_sessions(services, make_app, operator, admin_user):
    open_session(services, admin_user.id)
    assert len(services.sessions.list(operator, str(admin_user.id))) == 1

    app = make_app()

    async def scenario(pilot):
        await pilot.press("s")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert any("Revoked 1 session of" in m for m in toasts(app))

    run_console(app, scenario)
    assert services.sessions.list(operator, str(admin_user.id)) == []


def test_detail_shows_profile_roles_sessions_and_events(services, make_app, operator, ctx):
    (user,) = seed_users(services, 1)
    services.users.update(operator, ctx, str(user.id), {"first_name": "Grace"})

    app = make_app()

    async def scenario(pilot):
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert isinstance(detail, DetailScreen)
        assert user.email in text_of(detail.query_one("#detail-title"))
        assert "Grace" in text_of(detail.query_one("#profile"))
        assert text_of(detail.query_one("#roles")) == "user"
        events = detail.query_one("#events")
        assert events.row_count == 2
        assert events.get_row_at(0)[1] == "user.updated"
        # Actions work here too, and the list reloads on the way back.
        await pilot.press("l", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        assert "locked" in text_of(detail.query_one("#detail-title"))
        assert detail.query_one("#events").get_row_at(0)[1] == "user.locked"
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        assert app.screen.query_one("#users").cursor_value.locked_until is not None

    run_console(app, scenario)


def test_detail_of_a_user_gone_meanwhile(ui_services, make_ui_app, monkeypatch):
    seed_users(ui_services, 1)

    app = make_ui_app()

    async def scenario(pilot):

        def gone(*_a, **_k):
            raise NotFound("User not found")

        monkeypatch.setattr(ui_services.user_reads, "get", gone)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)
        assert any("no longer exists" in m for m in toasts(app, "warning"))

    run_console(app, scenario)


def test_revoke_one_session_from_the_detail_screen(services, make_app, operator, admin_user):
    open_session(services, admin_user.id)
    open_session(services, admin_user.id)

    app = make_app()

    async def scenario(pilot):
        await pilot.press("enter")
        await settle(pilot)
        detail = app.screen
        assert detail.query_one("#sessions").row_count == 2
        detail.query_one("#sessions").focus()
        await pilot.press("enter")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert detail.query_one("#sessions").row_count == 1
        assert any("Revoked the session from 127.0.0.1, pytest." in m for m in toasts(app))

    run_console(app, scenario)
    assert len(services.sessions.list(operator, str(admin_user.id))) == 1


def test_create_a_service_account_through_the_form(services, make_app, operator):
    app = make_app()

    async def scenario(pilot):
        await pilot.press("n")
        await type_into(pilot, "#in-email", "bot@example.com")
        await type_into(pilot, "#in-username", "nightly-bot")
        app.screen.query_one("#service").value = True
        await type_into(pilot, "#in-password", STRONG_PASSWORD)
        await pilot.press("ctrl+s")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, UserFormScreen)  # a service account has no password
        assert "no password" in form.query_one("#field-password", FormField).error
        form.query_one("#in-password").value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario)
    created = services.user_reads.find(operator, "nightly-bot")
    assert created.kind == "service"
    with services.db.read() as s:
        assert s.get(User, created.id).password_hash is None
