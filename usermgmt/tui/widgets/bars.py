"""The bar at the top (where am I, which database, who am I, is it up) and the status line."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Static

from usermgmt.core.text import printable


class TopBar(Horizontal):
    DEFAULT_CSS = """
    TopBar {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        & > #top-title { text-style: bold; color: $text-accent; padding: 0 1; width: auto; }
        & > #top-where { color: $text-muted; width: 1fr; padding: 0 1; }
        & > #top-state { width: auto; padding: 0 1; }
        & > #top-state.-online { color: $text-success; }
        & > #top-state.-offline { color: $text-error; text-style: bold; }
    }
    """

    def __init__(self, title: str, where: str) -> None:
        """``where``: the database and who acts (``ConsoleContext.where``)."""
        super().__init__()
        self.title = title
        self.where = where
        self._state = Label("", id="top-state")

    def compose(self) -> ComposeResult:
        yield Label(f"usermgmt · {self.title}", id="top-title")
        yield Label(printable(self.where), id="top-where", markup=False)
        yield self._state

    def on_mount(self) -> None:
        self.watch(self.app, "online", self._show_state)  # UserMgmtApp.online

    def _show_state(self, online: bool) -> None:
        # The label is held, not queried: the watch fires at once, maybe before it mounts.
        state = self._state
        state.update("● connected" if online else "○ database unavailable, reconnecting…")
        state.set_class(online, "-online")
        state.set_class(not online, "-offline")


class StatusLine(Static):
    DEFAULT_CSS = """
    StatusLine {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $text-muted;
    }
    """

    def __init__(self, text: str = "", *, id: str | None = None) -> None:
        super().__init__(printable(text), id=id, markup=False)
        self._text = text

    def update(self, content="", *, layout: bool = False) -> None:
        """One line of fixed height: no layout pass (it would re-render the whole screen on
        every cursor move); nothing at all if the text is unchanged. It may quote what
        was typed or stored: controls are shown escaped."""
        if content != self._text:
            self._text = content
            shown = printable(content) if isinstance(content, str) else content
            super().update(shown, layout=layout)
