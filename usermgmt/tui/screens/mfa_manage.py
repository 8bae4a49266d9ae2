"""One's own two-step sign-in from the command palette: set it up, turn it off (password and
a code), make new recovery codes (a code; shown once).

Only the remote console has an own account (the person signed in to the server). The
embedded console acts as the OS operator, who has none: there the palette's entry says so
and points to the remote console, and an admin resets a user's factor on the detail
screen (`m`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from usermgmt.core.errors import DomainError, InvalidMfaCode, ValidationError
from usermgmt.core.mfa_schemas import RecoveryCodes
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.screens.mfa_codes import RecoveryCodesScreen
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField

WRONG_CODE = "That code is not right (an app code or an unused recovery code)"
EMBEDDED = (
    "Two-step sign-in belongs to a person's own account. This console runs as the operator "
    "of this machine, which has no account, so there is nothing to set up here.\n\n"
    "Set yours up from the remote console: `usermgmt login --server URL`, then "
    "`usermgmt tui` (command palette: “Set up two-step sign-in”). To reset another user's, "
    "open the user and press m."
)


def palette_commands(app: App[Any], ctx: ConsoleContext) -> Iterator[SystemCommand]:
    if not ctx.built:
        return
    if not ctx.remote:
        yield SystemCommand(
            "Set up two-step sign-in",
            "Not here: this console has no account of its own (tells where)",
            lambda: app.push_screen(MessageScreen("Two-step sign-in", EMBEDDED)),
        )
        return
    from usermgmt.tui.screens.mfa_setup import MfaSetupScreen

    yield SystemCommand(
        "Set up two-step sign-in",
        "A second factor for your account: an authenticator app",
        lambda: app.push_screen(MfaSetupScreen(ctx)),
    )
    yield SystemCommand(
        "Disable two-step sign-in…",
        "Turn your second factor off (password and a code)",
        lambda: app.push_screen(MfaDisableScreen(ctx)),
    )
    yield SystemCommand(
        "New recovery codes",
        "Ten new codes for your account; the old ones stop working",
        lambda: app.push_screen(RecoveryCodesRenewScreen(ctx)),
    )


class _CodeDialog(ModalScreen[bool]):
    """A dialog asking for a code (and, to disable, the password); ``ctrl+s`` sends it,
    ``esc`` cancels (its subclasses' BINDINGS name what ``ctrl+s`` does)."""

    title_text = ""
    body_text = ""
    ok_label = "OK"
    ok_variant = "primary"
    ask_password = False

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.busy = False

    def compose(self) -> ComposeResult:
        with Dialog():
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.body_text, classes="dialog-body", markup=False)
            if self.ask_password:
                yield FormField("Password", Input(password=True, id="password"), key="password")
            yield FormField(
                "Code from the app (or a recovery code)",
                Input(id="code", max_length=64),
                key="code",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.ok_label} (ctrl+s)", id="ok", variant=self.ok_variant)
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#password" if self.ask_password else "#code", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "password":
            self.query_one("#code", Input).focus()
        else:
            self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self.action_save()
        else:
            self.dismiss(False)

    def action_cancel(self) -> None:
        self.dismiss(False)

    def _field(self, key: str) -> FormField:
        return self.query_one(f"#field-{key}", FormField)

    def action_save(self) -> None:
        if self.busy:
            return
        data = {"code": self.query_one("#code", Input).value.strip()}
        if self.ask_password:
            data["password"] = self.query_one("#password", Input).value
        missing = False
        for key, value in data.items():
            self._field(key).set_error(None if value else ["Required"])
            missing = missing or not value
        if missing:
            return
        self.busy = True
        rc = self.ctx.request_context()
        self.ctx.run(
            self, lambda backend: self.send(backend, rc, data), self.sent, failed=self._refused
        )

    def send(self, backend: Any, rc: Any, data: dict[str, str]) -> Any:
        raise NotImplementedError

    def sent(self, result: Any) -> None:
        raise NotImplementedError

    def _refused(self, exc: DomainError) -> bool:
        self.busy = False
        if isinstance(exc, InvalidMfaCode):
            self.query_one("#code", Input).value = ""
            self._field("code").set_error([WRONG_CODE])
            self.query_one("#code", Input).focus()
            return True
        if isinstance(exc, ValidationError):
            errors = exc.field_errors or {"code": [exc.message]}
            shown = False
            for key, messages in errors.items():
                if key in ("password", "code") and (key != "password" or self.ask_password):
                    self._field(key).set_error(messages)
                    shown = True
            return shown
        return False


class MfaDisableScreen(_CodeDialog):
    BINDINGS = [
        Binding("ctrl+s", "save", "Disable"),
        Binding("escape", "cancel", "Cancel"),
    ]
    title_text = "Disable two-step sign-in"
    body_text = (
        "Your account will be protected by its password alone. Type your password and a "
        "code from the app (or an unused recovery code)."
    )
    ok_label = "Disable"
    ok_variant = "error"
    ask_password = True

    def send(self, backend: Any, rc: Any, data: dict[str, str]) -> None:
        backend.mfa.disable(self.ctx.actor, rc, data)

    def sent(self, result: None) -> None:
        self.app.notify("Two-step sign-in is off for your account.", title="Two-step sign-in")
        self.dismiss(True)


class RecoveryCodesRenewScreen(_CodeDialog):
    BINDINGS = [
        Binding("ctrl+s", "save", "Make new codes"),
        Binding("escape", "cancel", "Cancel"),
    ]
    title_text = "New recovery codes"
    body_text = "Ten new codes replace the ones you have; those stop working at once."
    ok_label = "Make new codes"

    def send(self, backend: Any, rc: Any, data: dict[str, str]) -> RecoveryCodes:
        return backend.mfa.regenerate_recovery_codes(self.ctx.actor, rc, data)

    def sent(self, result: RecoveryCodes) -> None:
        self.app.push_screen(
            RecoveryCodesScreen(result.recovery_codes, title="Your new recovery codes"),
            lambda _: self.dismiss(True),
        )
