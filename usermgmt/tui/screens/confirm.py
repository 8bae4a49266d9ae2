"""Yes or no before anything destructive. Cancel has the focus, so Enter alone never destroys.

The keys are those of every dialog (docs/tui.md, "Dialog keys"): ``ctrl+s`` does
what the dialog is for and ``esc`` cancels; with nothing to type in, ``y`` and
``n`` say the same.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from usermgmt.core.text import printable, printable_lines
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,ctrl+s", "confirm", "Confirm"),
        Binding("n,escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, message: str, confirm_label: str = "Yes", *, danger=True):
        super().__init__()
        self.title_text = title
        self.message = message
        self.confirm_label = confirm_label
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Dialog():
            yield Label(printable(self.title_text), classes="dialog-title", markup=False)
            yield Static(printable_lines(self.message), classes="dialog-body", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    f"{self.confirm_label} (y)",
                    id="confirm",
                    variant="error" if self.danger else "primary",
                )
                yield Button("Cancel (n)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "confirm")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
