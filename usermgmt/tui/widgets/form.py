"""A labelled form field that can show the core's validation messages under itself."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Label, Static

from usermgmt.core.text import printable


class FormField(Vertical):
    DEFAULT_CSS = """
    FormField {
        height: auto;
        & > .field-label { color: $text-muted; padding: 0 1; }
        & > .field-error { color: $text-error; padding: 0 1; display: none; }
        &.-invalid > .field-error { display: block; }
        &.-invalid > Input { border: tall $error; }
    }
    """

    def __init__(self, label: str, widget: Widget, *, key: str, id: str | None = None) -> None:
        super().__init__(id=id or f"field-{key.replace('.', '-')}")
        self.label = label
        self.widget = widget
        self.key = key
        self.error = ""

    def compose(self) -> ComposeResult:
        yield Label(self.label, classes="field-label")
        yield self.widget
        yield Static("", classes="field-error", markup=False)

    def set_error(self, messages: list[str] | None) -> None:
        text = "; ".join(messages or [])
        self.error = text
        self.query_one(".field-error", Static).update(printable(text))
        self.set_class(bool(text), "-invalid")
