"""The remote console's two-step sign-in against a live server, on both databases: enrolment
from the command palette (usermgmt.tui.screens.mfa_setup, mfa_codes, mfa_manage), the
console's own login (mfa_login, usermgmt.client.login) and the role policy's enrolment."""

from __future__ import annotations

import io
import json
import logging
import sys
import time

import pyotp
import pytest
import segno
from tui.tui_helpers import run_console, settle, text_of, toasts, wait_until

from usermgmt.cli.app import _remote_console_opening
from usermgmt.client.factory import RemoteTarget, connect
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import NotLoggedIn
from usermgmt.core.services import build_services
from usermgmt.tui.app import UserMgmtApp
from usermgmt.tui.screens.mfa_codes import RecoveryCodesScreen
from usermgmt.tui.screens.mfa_login import LoginScreen, opening
from usermgmt.tui.screens.mfa_manage import MfaDisableScreen, RecoveryCodesRenewScreen
from usermgmt.tui.screens.mfa_setup import MfaSetupScreen
from usermgmt.tui.screens.users import UsersScreen
from usermgmt.tui.widgets import qr

from .conftest import PASSWORD, invoke, start_server, unique_email
from .test_mfa_both_modes import enrol

SIZE = (80, 24)  # the smallest terminal the console supports: the QR code must fit


@pytest.fixture(scope="module")
def core(served):
    svc = build_services(load_settings(database_url=served.database_url, bcrypt_rounds=4))
    yield svc
    svc.close()


def person(core, role: str = "moderator") -> str:
    email = unique_email("c")  # short: its QR code fits 80x24 (see usermgmt.tui.widgets.qr)
    core.users.create(
        Actor.operator("cli", "tester"),
        RequestContext(request_id="seed-mfa-console"),
        {"email": email, "password": PASSWORD, "roles": [role]},
    )
    return email


def log_in(url: str, email: str, context: str, code: str | None = None):
    lines = PASSWORD + "\n" + (f"{code}\n" if code else "")
    args = ("login", "--server", url, "--context", context, "--email", email)
    return invoke(*args, "--password-stdin", input=lines)


def mfa_enabled(core, email: str) -> bool:
    operator = Actor.operator("cli", "tester")
    return core.user_reads.find(operator, email).mfa_enabled


def stored(config_home, name: str) -> dict:
    return json.loads((config_home / "usermgmt" / "contexts.json").read_text())["contexts"][name]


@pytest.fixture
def console(served):
    made = []

    def make(context: str, url: str | None = None, **kwargs) -> UserMgmtApp:
        backend = connect(RemoteTarget(url or served.url, context))
        made.append(backend)
        return UserMgmtApp(
            backend, os_user="tester", search_debounce=0.01, retry_start=False, **kwargs
        )

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def captured_log():
    """Every log record of the run, from any logger, at any level."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, root = Keep(logging.DEBUG), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(level)


def palette(app, name: str):
    """Run the command palette's entry ``name`` of the current screen."""
    for command in app.get_system_commands(app.screen):
        if command.title == name:
            return command.callback()
    raise AssertionError(f"no palette entry {name!r}")


def wrong_code(secret: str) -> str:
    now = time.time()
    near = {pyotp.TOTP(secret).at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(1, 100)) if c not in near)


def drawn_matrix(lines: list[str]) -> list[list[int]]:
    """The modules (1 dark) that segno's half-block drawing shows, row by row."""
    top = {" ": 1, "▀": 0, "▄": 1, "█": 0}
    bottom = {" ": 1, "▀": 1, "▄": 0, "█": 0}
    rows = []
    for line in lines:
        rows.append([top[c] for c in line])
        rows.append([bottom[c] for c in line])
    return rows


async def type_into(pilot, selector: str, value: str) -> None:
    box = pilot.app.screen.query_one(selector)
    box.focus()
    box.value = value
    await pilot.press("enter")
    await settle(pilot)


async def acknowledge_codes(pilot) -> list[str]:
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, RecoveryCodesScreen), "the codes")
    codes = text_of(app.screen.query_one("#codes")).split()
    await pilot.press("escape")  # not an acknowledgement
    assert isinstance(app.screen, RecoveryCodesScreen)
    await pilot.press("ctrl+s")  # neither, until ticked
    assert isinstance(app.screen, RecoveryCodesScreen)
    await pilot.press("space")  # ticks "I have stored them" (it has the focus)
    await pilot.press("ctrl+s")
    await settle(pilot)
    assert not isinstance(app.screen, RecoveryCodesScreen)
    return codes


def test_enrol_from_the_console(served, core, config_home, console, captured_log):
    email = person(core)
    assert log_in(served.url, email, "me").exit_code == 0
    app = console("me")
    assert _remote_console_opening(app.ctx.services) is None  # a full session: home first
    seen: dict[str, object] = {}

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        palette(app, "Set up two-step sign-in")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MfaSetupScreen)
        secret = text_of(screen.query_one("#secret")).replace(" ", "")
        uri = text_of(screen.query_one("#uri"))
        assert f"secret={secret}" in uri and uri.startswith("otpauth://totp/")
        drawing = screen.query_one("#qr", qr.QrCode)
        assert len(drawing.lines) <= SIZE[1]  # fits the terminal
        assert "".join(qr.segments(uri)) == uri  # the code holds the URI, nothing else
        expected = segno.make(qr.segments(uri), error="l", micro=False)
        border = drawing.border_modules
        assert drawn_matrix(drawing.lines)[: expected.symbol_size(border=border)[1]] == [
            list(row) for row in expected.matrix_iter(border=border)
        ]
        seen["secret"] = secret
        await type_into(pilot, "#code", wrong_code(secret))
        assert app.screen is screen  # kept, saying why
        assert "not right" in screen.query_one("#field-code").error
        await type_into(pilot, "#code", pyotp.TOTP(secret).now())
        codes = await acknowledge_codes(pilot)
        assert len(codes) == 10 and len(set(codes)) == 10
        seen["codes"] = codes
        assert isinstance(app.screen, UsersScreen)  # the setup closed with the codes

    run_console(app, scenario, size=SIZE)
    assert mfa_enabled(core, email)
    secrets = [seen["secret"], *seen["codes"]]
    logged = "\n".join(r.getMessage() for r in captured_log)
    shown = "\n".join(toasts(app))
    assert not any(s in logged or s in shown for s in secrets)
    assert not any(s in served.server.log() for s in secrets)


def test_disable_and_new_recovery_codes(served, core, config_home, console):
    email, _bearer, secret, old = enrol(served)
    assert log_in(served.url, email, "me", code=old[0]).exit_code == 0
    app = console("me")

    async def scenario(pilot):
        palette(app, "New recovery codes")
        await settle(pilot)
        assert isinstance(app.screen, RecoveryCodesRenewScreen)
        # The step after the enrolment's: accepted (±1 step), not a replay.
        await type_into(pilot, "#code", pyotp.TOTP(secret).at(time.time() + 30))
        new = await acknowledge_codes(pilot)
        assert len(new) == 10 and not set(new) & set(old)

        palette(app, "Disable two-step sign-in…")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, MfaDisableScreen)
        dialog.query_one("#password").value = PASSWORD
        await type_into(pilot, "#code", old[1])  # voided by the new codes
        assert app.screen is dialog and "not right" in dialog.query_one("#field-code").error
        dialog.query_one("#password").value = "Wrong-" + PASSWORD
        await type_into(pilot, "#code", new[0])
        assert app.screen is dialog and "wrong" in dialog.query_one("#field-password").error
        dialog.query_one("#password").value = PASSWORD
        await type_into(pilot, "#code", new[0])  # not spent by the wrong password
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario, size=SIZE)
    assert not mfa_enabled(core, email)
    assert any("Two-step sign-in is off" in t for t in toasts(app))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_console_signs_in_again_with_a_code_then_with_a_recovery_code(
    served, core, config_home, console, monkeypatch
):
    email, _bearer, secret, codes = enrol(served)
    operator, rc = Actor.operator("cli", "tester"), RequestContext(request_id="grant")
    user = core.user_reads.find(operator, email)
    core.roles.grant(operator, rc, str(user.id), "moderator")  # so that home lists users
    assert log_in(served.url, email, "me", code=codes[0]).exit_code == 0
    core.sessions.revoke_all(operator, rc, str(user.id))
    backend = connect(RemoteTarget(served.url, "me"))
    try:
        with pytest.raises(NotLoggedIn):  # no terminal to show a login on: exit 7, as before
            _remote_console_opening(backend)
        with monkeypatch.context() as patched:  # on a terminal: the login screen instead
            patched.setattr(sys, "stdin", Terminal())
            patched.setattr(sys, "stdout", Terminal())
            assert _remote_console_opening(backend) == "sign_in"
    finally:
        backend.close()

    def sign_in(code: str, *, wrong_first: bool) -> UserMgmtApp:
        app = console("me", opening=opening("sign_in"))

        async def scenario(pilot):
            screen = app.screen
            assert isinstance(screen, LoginScreen)
            assert email in text_of(screen.query_one("#login-where"))
            if wrong_first:
                await type_into(pilot, "#password", "Wrong-" + PASSWORD)
                assert "Wrong password" in screen.query_one("#field-password").error
            await type_into(pilot, "#password", PASSWORD)
            assert screen.has_class("-code") and app.screen is screen
            if wrong_first:
                await type_into(pilot, "#code", wrong_code(secret))
                assert "not right" in screen.query_one("#field-code").error
                clock, screen.login.clock = screen.login.clock, lambda: clock() + 3600
                await type_into(pilot, "#code", wrong_code(secret))  # the challenge expired
                assert not screen.has_class("-code")
                assert "type the password again" in screen.query_one("#field-password").error
                screen.login.clock = clock
                await type_into(pilot, "#password", PASSWORD)
            await type_into(pilot, "#code", code)
            assert isinstance(app.screen, UsersScreen)
            await settle(pilot)
            assert app.screen.query_one("#users").cursor_value is not None

        run_console(app, scenario, size=SIZE)
        assert toasts(app, "error") == []
        return app

    sign_in(pyotp.TOTP(secret).at(time.time() + 30), wrong_first=True)
    tokens = stored(config_home, "me")
    assert tokens["access_token"] and tokens["refresh_token"]
    me = invoke("--context", "me", "users", "show", email, "-o", "json")
    assert me.exit_code == 0 and me.json()["mfa_enabled"] is True
    core.sessions.revoke_all(operator, rc, str(user.id))
    sign_in(codes[1], wrong_first=False)  # a recovery code
    assert stored(config_home, "me")["refresh_token"] != tokens["refresh_token"]


@pytest.fixture(scope="module")
def policy_server(served, tmp_path_factory):
    """A second server on the same database whose policy makes moderators enrol."""
    server = start_server(
        served.database_url,
        tmp_path_factory.mktemp("policy"),
        USERMGMT_MFA_REQUIRED_ROLES="moderator",
    )
    yield server
    server.stop(timeout=60)


def test_a_session_held_back_by_the_policy_opens_on_enrolment(
    policy_server, core, config_home, console
):
    email = person(core, "moderator")
    done = log_in(policy_server.url, email, "held")
    assert done.exit_code == 0 and "must set up a second factor" in done.stderr
    backend = connect(RemoteTarget(policy_server.url, "held"))
    try:
        assert _remote_console_opening(backend) == "enrol"
    finally:
        backend.close()
    app = console("held", url=policy_server.url, opening=opening("enrol"))

    async def scenario(pilot):
        screen = app.screen
        assert isinstance(screen, MfaSetupScreen) and screen.required
        await pilot.press("escape")  # cannot be skipped: nothing else works yet
        assert app.screen is screen
        secret = text_of(screen.query_one("#secret")).replace(" ", "")
        await type_into(pilot, "#code", pyotp.TOTP(secret).now())
        await acknowledge_codes(pilot)
        assert isinstance(app.screen, UsersScreen)
        await settle(pilot)
        assert app.screen.query_one("#users").cursor_value is not None  # a full session

    run_console(app, scenario, size=SIZE)
    assert toasts(app, "error") == []
    assert mfa_enabled(core, email)


def test_signing_in_from_the_console_lands_on_the_enrolment_the_policy_requires(
    policy_server, core, config_home, console
):
    email = person(core, "moderator")
    assert log_in(policy_server.url, email, "held").exit_code == 0
    operator, rc = Actor.operator("cli", "tester"), RequestContext(request_id="revoke")
    core.sessions.revoke_all(operator, rc, str(core.user_reads.find(operator, email).id))
    app = console("held", url=policy_server.url, opening=opening("sign_in"))

    async def scenario(pilot):
        await type_into(pilot, "#password", PASSWORD)
        screen = app.screen
        assert isinstance(screen, MfaSetupScreen) and screen.required
        secret = text_of(screen.query_one("#secret")).replace(" ", "")
        await type_into(pilot, "#code", pyotp.TOTP(secret).now())
        await acknowledge_codes(pilot)
        assert isinstance(app.screen, UsersScreen)
        await settle(pilot)
        assert app.screen.query_one("#users").cursor_value is not None

    run_console(app, scenario, size=SIZE)
    assert toasts(app, "error") == [] and mfa_enabled(core, email)


def test_a_session_ended_while_in_use_asks_to_sign_in_again(served, core, config_home, console):
    email = person(core, "moderator")
    assert log_in(served.url, email, "me").exit_code == 0
    before = stored(config_home, "me")["refresh_token"]
    app = console("me")
    operator, rc = Actor.operator("cli", "tester"), RequestContext(request_id="revoke")

    async def scenario(pilot):
        assert isinstance(app.screen, UsersScreen)
        core.sessions.revoke_all(operator, rc, str(core.user_reads.find(operator, email).id))
        await pilot.press("ctrl+r")  # the refresh is refused: the login screen comes up
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, LoginScreen)
        assert "refused this console's session" in text_of(screen.query_one("#login").children[2])
        await type_into(pilot, "#password", PASSWORD)
        assert isinstance(app.screen, UsersScreen)
        await settle(pilot)
        assert app.screen.query_one("#users").cursor_value is not None

    run_console(app, scenario, size=SIZE)
    assert any("Signed in again" in t for t in toasts(app))
    assert toasts(app, "error") == []
    assert stored(config_home, "me")["refresh_token"] not in (None, before)


def test_a_console_started_on_a_held_back_session_turns_to_the_enrolment(
    policy_server, core, config_home, console
):
    """Without the CLI's check first (say, a context logged in elsewhere meanwhile): the
    server's refusal itself brings up the enrolment, once, and no error toast."""
    email = person(core, "moderator")
    assert log_in(policy_server.url, email, "held").exit_code == 0
    app = console("held", url=policy_server.url)

    async def scenario(pilot):
        await wait_until(pilot, lambda: isinstance(app.screen, MfaSetupScreen), "enrolment")
        await settle(pilot)
        screen = app.screen
        assert screen.required
        assert sum(isinstance(s, MfaSetupScreen) for s in app.screen_stack) == 1
        secret = text_of(screen.query_one("#secret")).replace(" ", "")
        await type_into(pilot, "#code", pyotp.TOTP(secret).now())
        await acknowledge_codes(pilot)
        assert isinstance(app.screen, UsersScreen)
        await settle(pilot)
        assert app.screen.query_one("#users").cursor_value is not None  # reloaded

    run_console(app, scenario, size=SIZE)
    assert toasts(app, "error") == [] and mfa_enabled(core, email)
