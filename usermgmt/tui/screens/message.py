"""A modal with a title and a message, for results that must not be missed."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static

from usermgmt.core.text import printable, printable_lines
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog


class MessageScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter", "close", "Close")]

    def __init__(self, title: str, message: str, *, severity: str = "information") -> None:
        super().__init__()
        self.title_text = title
        self.message = message
        self.severity = severity

    def compose(self) -> ComposeResult:
        with Dialog(classes=f"-{self.severity}"):
            yield Label(printable(self.title_text), classes="dialog-title", markup=False)
            yield Static(printable_lines(self.message), classes="dialog-body", markup=False)
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
