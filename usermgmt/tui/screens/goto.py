"""`:` on the users screen: go to a user by id (or its first 8 characters), email or username."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label

from usermgmt.core.errors import DomainError, NotFound, ValidationError
from usermgmt.core.schemas import UserOut
from usermgmt.tui.screens.form import FormScreen
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField


class GotoScreen(FormScreen[str, UserOut | None]):
    """Submits what was typed; dismissed with the user found, or None. Not found and an
    ambiguous short id are shown under the field, which keeps what was typed."""

    SAVE = "go"

    BINDINGS = [
        Binding("ctrl+s", "go", "Go"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Dialog(id="goto-form"):
            yield Label("Go to user", classes="dialog-title")
            yield FormField(
                "Id (or its first 8 characters), email or username",
                Input(placeholder="e.g. 3f2a9c1e, ada@example.com, ada", id="ref"),
                key="ref",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Go (ctrl+s)", id="go", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#ref", Input).focus()

    def action_go(self) -> None:
        if self.busy:
            return
        field = self.query_one("#field-ref", FormField)
        ref = self.query_one("#ref", Input).value.strip()
        if not ref:
            field.set_error(["Type an id, an email or a username"])
            return
        field.set_error(None)
        self.submit(ref)

    def show_refusal(self, exc: DomainError) -> bool:
        if isinstance(exc, (NotFound, ValidationError)):
            self.query_one("#field-ref", FormField).set_error([exc.message])
            self.query_one("#ref", Input).focus()
            return True
        return False
