"""The remote console's own login, for a context whose session the server refuses.

It shows the server, the account and the context, asks for the password, then (when
the account has a second factor) for a code from the app or a recovery code, and
stores the new session in the contexts file as `usermgmt login` does
(``usermgmt.client.login``). When the server's role policy holds the new session back,
the enrolment screen comes before anything else. Wrong passwords and codes are said
next to the field; the server counts them toward its lockout as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from usermgmt.core.errors import (
    AccountLocked,
    DomainError,
    InvalidCredentials,
    InvalidMfaCode,
    NotLoggedIn,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)
from usermgmt.core.text import printable
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField

EXIT_NOT_LOGGED_IN = 7  # the CLI's exit code when the console was left without signing in


class LoginScreen(Screen[Any]):
    """Dismissed with the ``SignedIn`` answer (saved already), or None when left: at the
    start leaving quits the console; ``back`` (the session was refused while in use)
    returns to it instead."""

    DEFAULT_CSS = """
    LoginScreen { align: center middle; }
    LoginScreen #login-where { color: $text-muted; margin-bottom: 1; }
    LoginScreen #field-code { display: none; }
    LoginScreen.-code #field-code { display: block; }
    LoginScreen.-code #field-password { display: none; }
    """

    BINDINGS = [
        Binding("ctrl+s", "sign_in", "Sign in"),
        # One of the two, by ``back`` (check_action): the footer names where esc leads.
        Binding("escape", "leave", "Quit"),
        Binding("escape", "cancel", "Back"),
    ]
    signing_in = True  # the palette offers no two-step commands here

    def __init__(self, ctx: ConsoleContext, *, reason: str = "", back: bool = False) -> None:
        super().__init__()
        self.ctx = ctx
        self.back = back
        self.login = ctx.services.login_again()  # a remote backend's (usermgmt.client.login)
        self.reason = reason
        self.busy = False

    def compose(self) -> ComposeResult:
        login = self.login
        with Dialog(id="login"):
            yield Label(
                printable(f"Sign in to {login.context.server}"),
                classes="dialog-title",
                markup=False,
            )
            yield Static(
                printable(f"as {login.identifier} (context {login.name})"),
                id="login-where",
                markup=False,
            )
            if self.reason:
                yield Static(printable(self.reason), classes="dialog-body", markup=False)
            yield FormField("Password", Input(password=True, id="password"), key="password")
            yield FormField(
                "Code from your authenticator app, or a recovery code",
                Input(id="code", max_length=64),
                key="code",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Sign in (ctrl+s)", id="sign-in", variant="primary")
                yield Button(f"{'Back' if self.back else 'Quit'} (esc)", id="leave")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#password", Input).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("leave", "cancel"):
            return self.back == (action == "cancel")
        return True

    def help_bindings(self) -> list[Binding]:
        """What ? lists: the keys of this screen as it was opened (help.py)."""
        return [b for b in self.BINDINGS if self.check_action(b.action, ()) is not False]

    @property
    def asking_code(self) -> bool:
        return self.has_class("-code")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_sign_in()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "sign-in":
            self.action_sign_in()
        else:
            self.dismiss(None)

    def action_sign_in(self) -> None:
        if self.busy:
            return
        key = "code" if self.asking_code else "password"
        field = self.query_one(f"#field-{key}", FormField)
        value = self.query_one(f"#{key}", Input).value
        value = value if key == "password" else value.strip()
        if not value:
            field.set_error(["Required"])
            return
        field.set_error(None)
        self.busy = True
        login = self.login
        job = (
            (lambda _: login.second_factor(value))
            if key == "code"
            else (lambda _: login.password(value))
        )
        self.ctx.run(self, job, self._answered, failed=self._refused, group="login")

    def _answered(self, signed_in: Any) -> None:
        self.busy = False
        if signed_in is None:  # a second factor is asked for
            self.query_one("#password", Input).value = ""
            self.add_class("-code")
            self.query_one("#code", Input).focus()
            return
        self.dismiss(signed_in)

    def _refused(self, exc: DomainError) -> bool:
        self.busy = False
        key = "code" if self.asking_code else "password"
        box = self.query_one(f"#{key}", Input)
        if isinstance(exc, InvalidMfaCode) and self.login.challenge_expired:
            self.remove_class("-code")
            key, box = "password", self.query_one("#password", Input)
            message = "That took longer than the server allows: type the password again"
        elif isinstance(exc, InvalidMfaCode):
            message = "That code is not right, or was used already"
        elif isinstance(exc, InvalidCredentials):
            message = "Wrong password"
        elif isinstance(exc, AccountLocked | RateLimited | ServiceUnavailable | ValidationError):
            message = exc.message
        else:
            return False
        box.value = ""
        box.focus()
        self.query_one(f"#field-{key}", FormField).set_error([message])
        return True

    def action_leave(self) -> None:
        self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def sign_in(app: App[Any], ctx: ConsoleContext, then: Callable[[], None]) -> None:
    """The login screen, then (if the server's policy says so) enrolment, then ``then()``;
    leaving the login ends the console (exit 7)."""

    def answered(signed_in: Any) -> None:
        if signed_in is None:
            app.exit(return_code=EXIT_NOT_LOGGED_IN)
        elif signed_in.mfa_enrolment_required:
            enrol(app, ctx, then)
        else:
            then()

    app.push_screen(LoginScreen(ctx), answered)


def enrol(app: App[Any], ctx: ConsoleContext, then: Callable[[], None]) -> None:
    """The enrolment the server's policy requires before anything else, then ``then()``."""
    from usermgmt.tui.screens.mfa_setup import MfaSetupScreen

    app.push_screen(MfaSetupScreen(ctx, required=True), lambda _: then())


def opening(kind: str) -> Callable[[App[Any], Callable[[], None]], None]:
    """What the remote console opens with before its home screen: ``"sign_in"`` (the
    context's session is refused) or ``"enrol"`` (the server's policy requires it)."""

    def open_(app: Any, home: Callable[[], None]) -> None:
        if kind == "sign_in":
            sign_in(app, app.ctx, home)
        else:
            enrol(app, app.ctx, home)

    return open_


def session_refused(app: App[Any], ctx: ConsoleContext, exc: DomainError) -> bool:
    """The server refused the remote console's session while in use: the login screen, or
    the enrolment when its role policy holds the session back (once, however many calls
    were refused), then every screen reloads. True when one of them took the error; the
    action that was refused is not repeated."""
    enrolment = isinstance(exc, PermissionDenied) and exc.details.get("mfa_enrolment_required")
    if not (enrolment or isinstance(exc, NotLoggedIn)):
        return False
    if not (ctx.remote and ctx.services.context_name):
        return False
    if any(_holds_back(screen) for screen in app.screen_stack):
        return True  # the login or the enrolment is up already
    if enrolment:
        enrol(app, ctx, lambda: _reload(app, "Two-step sign-in is on."))
        return True

    def answered(signed_in: Any) -> None:
        if signed_in is None:
            app.notify(exc.message, title="Not logged in", severity="error")
            return
        if signed_in.mfa_enrolment_required:
            enrol(app, ctx, reload)
        else:
            reload()

    def reload() -> None:
        _reload(app, "Signed in again.")

    reason = "The server refused this console's session (it expired or was ended)."
    app.push_screen(LoginScreen(ctx, reason=reason, back=True), answered)
    return True


def _reload(app: App[Any], said: str) -> None:
    app.notify(f"{said} Repeat what the server refused.", title="Signed in")
    for screen in app.screen_stack:
        screen.post_message(DatabaseBack())


def _holds_back(screen: Any) -> bool:
    from usermgmt.tui.screens.mfa_setup import MfaSetupScreen

    return isinstance(screen, LoginScreen) or (
        isinstance(screen, MfaSetupScreen) and screen.required
    )
