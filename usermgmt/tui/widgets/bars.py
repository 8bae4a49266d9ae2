"""The bar at the top (where am I, which database, who am I, is it up), the status line and
the footer of keys."""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Label, Static

from usermgmt.core.text import printable
from usermgmt.tui.widgets.steady_footer import SteadyFooter


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


class KeyFooter(SteadyFooter):
    """The footer of every screen and dialog: the keys of the screen in front only (a
    dialog has its own, over its opener's), on one line, never cut mid-key.

    Priority is declaration order: the focused widget's keys, then the screen's in the
    order of its BINDINGS (most important first). When they do not all fit, whole keys
    are left out from the end; ``? Help`` (which lists them all) always stays, and the
    command palette's key is shown last, only when every other key fits.
    """

    HELP_ACTIONS = frozenset({"help", "app.help"})

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._width = 0

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        # Footer yields one FooterKey per action (no binding groups are declared here).
        keys: list[Widget] = list(super().compose())
        palette = [k for k in keys if k.has_class("-command-palette")]
        helps = [k for k in keys if getattr(k, "action", None) in self.HELP_ACTIONS]
        rest = [k for k in keys if k not in palette and k not in helps]
        self._width = width = self.size.width or self.app.size.width
        room = width - sum(_key_width(k) for k in helps)
        shown: list[Widget] = []
        for key in rest:
            if _key_width(key) > room:
                break
            shown.append(key)
            room -= _key_width(key)
        yield from shown
        yield from helps
        for key in palette:  # in line with the others, not docked over them
            if len(shown) == len(rest) and _key_width(key) <= room:
                key.remove_class("-command-palette")
                yield key

    async def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and event.size.width != self._width:
            await self.recompose()


def _key_width(key: Widget) -> int:
    """Columns a compact footer key takes: ``k description`` and the gap after it."""
    display, description = getattr(key, "key_display", ""), getattr(key, "description", "")
    return cell_len(display + (f" {description}" if description else "")) + 1
