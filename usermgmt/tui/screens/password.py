"""`p`: set a password (typed twice, masked) or email a reset link instead."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, Static

from usermgmt.core.errors import DomainError, ValidationError
from usermgmt.core.schemas import UserOut
from usermgmt.core.text import printable
from usermgmt.tui.screens.form import FormScreen, Submit
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField


class PasswordScreen(FormScreen[str | None, str | None]):
    """Submits the new password, or None for "email a reset link instead"; dismissed
    with what was done (the opener's words), or None."""

    BINDINGS = [
        Binding("ctrl+s", "set_password", "Set password"),
        Binding("ctrl+l", "send_link", "Send reset link"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, user: UserOut, *, submit: Submit[str | None]) -> None:
        super().__init__(submit)
        self.user = user

    def compose(self) -> ComposeResult:
        with Dialog(id="password-form"):
            yield Label(
                printable(f"Password of {self.user.email}"), classes="dialog-title", markup=False
            )
            yield Static(
                "Setting a password signs the user out everywhere and emails them a notice. "
                "Or send a reset link and let them choose one.",
                classes="dialog-body",
            )
            yield FormField("New password", Input(password=True, id="new-password"), key="password")
            yield FormField("Repeat it", Input(password=True, id="repeat-password"), key="repeat")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Set (ctrl+s)", id="set", variant="primary")
                yield Button("Reset link (ctrl+l)", id="link")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#new-password", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "new-password":
            self.query_one("#repeat-password", Input).focus()
        else:
            self.action_set_password()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "set":
            self.action_set_password()
        elif event.button.id == "link":
            self.action_send_link()
        else:
            self.dismiss(None)

    def _fields(self) -> tuple[FormField, FormField]:
        return self.query_one("#field-password", FormField), self.query_one(
            "#field-repeat", FormField
        )

    def action_set_password(self) -> None:
        if self.busy:
            return
        new_field, repeat_field = self._fields()
        new_field.set_error(None)
        repeat_field.set_error(None)
        password = self.query_one("#new-password", Input).value
        if not password:
            new_field.set_error(["Type the new password, or send a reset link instead"])
            return
        if password != self.query_one("#repeat-password", Input).value:
            repeat_field.set_error(["The two passwords differ"])
            self.query_one("#repeat-password", Input).focus()
            return
        self.submit(password)

    def action_send_link(self) -> None:
        if self.busy:
            return
        self.submit(None)

    def show_refusal(self, exc: DomainError) -> bool:
        if isinstance(exc, ValidationError):
            messages = [m for msgs in exc.field_errors.values() for m in msgs] or [exc.message]
            self._fields()[0].set_error(messages)
            self.query_one("#new-password", Input).focus()
            return True
        return False

    def action_cancel(self) -> None:
        self.dismiss(None)
