"""The ten recovery codes, shown this once: closing needs an explicit "I have stored them".

Escape does not close it (a key pressed by habit must not lose the codes); the codes
live in this screen's widgets only and go when it closes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from usermgmt.core.text import printable


class RecoveryCodesScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RecoveryCodesScreen { align: center middle; }
    RecoveryCodesScreen > #codes-dialog {
        width: 64; max-width: 100%; height: auto; max-height: 100%;
        border: thick $warning; background: $surface; padding: 0 1;
    }
    RecoveryCodesScreen #codes-title { text-style: bold; }
    RecoveryCodesScreen #codes { padding: 1 2; text-style: bold; }
    RecoveryCodesScreen #codes-buttons { height: auto; }
    """

    BINDINGS = [
        Binding("escape", "not_yet", "Close", show=False),
        Binding("ctrl+s", "done", "Done"),
    ]

    def __init__(self, codes: list[str], *, title: str = "Your recovery codes") -> None:
        super().__init__()
        self.codes = list(codes)
        self.title_text = title

    def compose(self) -> ComposeResult:
        with Vertical(id="codes-dialog"):
            yield Label(self.title_text, id="codes-title")
            yield Static(
                "Store them now, somewhere safe (a password manager, or on paper): they are "
                "shown this once. Each signs you in once when your authenticator app is not "
                "at hand; new ones void these.",
                markup=False,
            )
            half = (len(self.codes) + 1) // 2
            rows = ["    ".join(printable(c) for c in self.codes[i::half]) for i in range(half)]
            yield Static("\n".join(rows), id="codes", markup=False)
            yield Checkbox("I have stored them", id="stored")
            with Horizontal(id="codes-buttons"):
                yield Button("Done (ctrl+s)", id="done", variant="primary", disabled=True)

    def on_mount(self) -> None:
        self.query_one("#stored", Checkbox).focus()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.query_one("#done", Button).disabled = not event.value

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_done()

    def action_done(self) -> None:
        if not self.query_one("#stored", Checkbox).value:
            self.action_not_yet()
            return
        self.dismiss(None)

    def action_not_yet(self) -> None:
        self.app.notify(
            "Tick “I have stored them” once they are safe: they are not shown again.",
            title="Recovery codes",
            severity="warning",
        )
