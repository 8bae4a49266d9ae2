"""The modal for an unexpected error: an incident id to quote, never a traceback."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog


class ErrorScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, incident: str, kind: str) -> None:
        super().__init__()
        self.incident = incident
        self.kind = kind

    def compose(self) -> ComposeResult:
        with Dialog(classes="-error"):
            yield Label("Unexpected error", classes="dialog-title")
            yield Static(
                f"Something went wrong that the console did not expect ({self.kind}).\n"
                f"Incident {self.incident}: the details are in tui.log in the data "
                "directory. The console is still usable.",
                classes="dialog-body",
                markup=False,
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Close (esc)", id="close", variant="primary")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None)

    def action_close(self) -> None:
        self.dismiss(None)
