"""`?`: every key of the screen below, generated from its bindings so it never drifts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.lazy_table import LazyTable

EVERYWHERE = [
    ("ctrl+p", "Command palette: every action by name"),
    ("tab / shift+tab", "Move between the search, the filters and the table"),
    ("escape", "Close a dialog, go back a screen, leave the search box"),
    ("ctrl+s", "In a dialog: do what it is for (save, create, lock, delete…)"),
    ("y / n", "In a question: yes / no"),
    ("? / f1", "This help"),
    ("ctrl+q", "Quit"),
]


def own_bindings(screen: Screen) -> list:
    """The screen's BINDINGS; a screen whose keys differ by how it was opened (the
    login's esc: quit or back) lists those of this one in ``help_bindings()``."""
    listed = getattr(screen, "help_bindings", None)
    return listed() if listed else getattr(screen, "BINDINGS", [])


def _rows(bindings) -> list[tuple[str, str]]:
    """(keys, description) per action, in declaration order, keys of one action joined."""
    seen: dict[tuple[str, str], list[str]] = {}
    for binding in bindings:
        if not isinstance(binding, Binding):
            binding = Binding(*binding)
        if not binding.description:
            continue
        keys = [k.strip() for k in binding.key.split(",")]
        if binding.key_display:
            keys = [binding.key_display]
        entry = seen.setdefault((binding.action, binding.tooltip or binding.description), [])
        entry.extend(k.replace("question_mark", "?") for k in keys if k not in entry)
    return [(" / ".join(keys), desc) for (_action, desc), keys in seen.items()]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def __init__(self, below: Screen) -> None:
        super().__init__()
        self.below = below

    def compose(self) -> ComposeResult:
        title = getattr(self.below, "HELP_TITLE", "This screen")
        with Dialog(classes="-wide", id="help", scrollable=True):
            yield Label(f"Keys · {title}", classes="dialog-title")
            yield from self._section(title, _rows(own_bindings(self.below)))
            if self.below.query(LazyTable):
                yield from self._section("Moving in the table", _rows(LazyTable.BINDINGS))
            yield from self._section("Everywhere", EVERYWHERE)
            yield Label("escape to close", classes="dialog-hint")
        yield KeyFooter()

    @staticmethod
    def _section(title: str, rows: list[tuple[str, str]]):
        yield Label(title, classes="help-section")
        for keys, description in rows:
            yield Static(f"  {keys:<18} {description}", classes="help-row", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
