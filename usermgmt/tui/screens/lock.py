"""`l` on an unlocked user: lock until unlocked, or for a number of minutes."""

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


class LockScreen(FormScreen[int | None, UserOut | None]):
    """Submits the minutes (None: until unlocked); dismissed with the locked user, or None."""

    SAVE = "lock"

    BINDINGS = [
        Binding("ctrl+s", "lock", "Lock"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, user: UserOut, *, submit: Submit[int | None]) -> None:
        super().__init__(submit)
        self.user = user

    def compose(self) -> ComposeResult:
        with Dialog(id="lock-form"):
            yield Label("Lock user?", classes="dialog-title")
            yield Static(
                printable(
                    f"{self.user.email} cannot sign in while locked, "
                    "and is signed out everywhere now."
                ),
                classes="dialog-body",
                markup=False,
            )
            yield FormField(
                "Minutes (empty: until unlocked with l)",
                Input(placeholder="until unlocked", id="minutes", type="integer"),
                key="minutes",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Lock (ctrl+s)", id="lock", variant="error")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        # Straight into the minutes: type them (or nothing) and press enter or ctrl+s.
        self.query_one("#minutes", Input).focus()

    def action_lock(self) -> None:
        if self.busy:
            return
        field = self.query_one("#field-minutes", FormField)
        field.set_error(None)
        text = self.query_one("#minutes", Input).value.strip()
        try:
            minutes = int(text) if text else None
        except ValueError:
            field.set_error(["A whole number of minutes, or empty"])
            return
        self.submit(minutes)

    def show_refusal(self, exc: DomainError) -> bool:
        if isinstance(exc, ValidationError):
            self.query_one("#field-minutes", FormField).set_error(
                [m for msgs in exc.field_errors.values() for m in msgs] or [exc.message]
            )
            self.query_one("#minutes", Input).focus()
            return True
        return False
