"""The ten recovery codes, shown this once: closing needs an explicit "I have stored them".

The one dialog whose ``esc`` does not simply close (docs/tui.md, "Dialog keys"): a key
pressed by habit must not lose the codes. Until the box is ticked, ``esc``, ``ctrl+s``
and the button say why instead (the footer shows ``esc Close`` dimmed); once it is
ticked, each of them closes. The codes live in this dialog's widgets only and go when
it closes.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from usermgmt.core.text import printable
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog

NOT_YET = "Tick “I have stored them” once they are safe: they are not shown again."


class RecoveryCodesScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    RecoveryCodesScreen #codes { padding: 0 2 1 2; text-style: bold; }
    """

    BINDINGS = [
        Binding("ctrl+s", "done", "Done"),
        # One key, two bindings: the first is shown (dimmed until ticked); while it is
        # disabled, the key falls through to the second, which says why.
        Binding("escape", "close", "Close"),
        Binding("escape", "not_yet", "Close", show=False),
    ]

    def __init__(self, codes: list[str], *, title: str = "Your recovery codes") -> None:
        super().__init__()
        self.codes = list(codes)
        self.title_text = title
        self.stored = False  # "I have stored them" ticked (the footer asks before mounting)

    def compose(self) -> ComposeResult:
        with Dialog(id="codes-dialog", classes="-warning"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(
                "Store them now, somewhere safe (a password manager, or on paper): they are "
                "shown this once. Each signs you in once when your authenticator app is not "
                "at hand; new ones void these.",
                classes="dialog-body",
                markup=False,
            )
            half = (len(self.codes) + 1) // 2
            rows = ["    ".join(printable(c) for c in self.codes[i::half]) for i in range(half)]
            yield Static("\n".join(rows), id="codes", markup=False)
            yield Checkbox("I have stored them", id="stored")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Done (ctrl+s)", id="done", variant="primary")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#stored", Checkbox).focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "close":
            return True if self.stored else None
        if action == "not_yet":
            return not self.stored
        return True

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        self.stored = event.value
        self.refresh_bindings()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_done()

    def action_done(self) -> None:
        if not self.stored:
            self.action_not_yet()
            return
        self.dismiss(None)

    def action_close(self) -> None:
        self.action_done()

    def action_not_yet(self) -> None:
        self.app.notify(NOT_YET, title="Recovery codes", severity="warning")
