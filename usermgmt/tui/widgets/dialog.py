"""The box of every dialog: never larger than the terminal, and whatever has the focus in view.

Its title is docked at the top, its buttons (or its hint) at the bottom, and what
lies between scrolls (sizes in app.tcss, ``.dialog``). Textual scrolls a focused
widget into view only when it is off the screen, and one under a docked button bar
is not; so the dialog scrolls it out from under the docks itself, and Tab shows
every control at 80x24 too.
"""

from __future__ import annotations

from textual import events
from textual.containers import VerticalScroll
from textual.widget import Widget


class Dialog(VerticalScroll, can_focus=False):
    """A dialog's box (classes ``dialog …``). ``scrollable``: focusable itself, for
    dialogs that only show text (help, an event), so the arrows and page keys scroll it."""

    def __init__(self, *children, scrollable: bool = False, **kwargs) -> None:
        kwargs["classes"] = f"dialog {kwargs.get('classes', '')}".strip()
        super().__init__(*children, **kwargs)
        self.can_focus = scrollable

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        self.call_after_refresh(self.scroll_into_view, event.widget)

    def scroll_into_view(self, widget: Widget) -> None:
        """Scroll ``widget`` into the part of the dialog that no dock covers."""
        child = next((w for w in widget.ancestors_with_self if w.parent is self), None)
        if child is None or child.styles.dock != "none" or not widget.is_attached:
            return
        window = self.scrollable_content_region.shrink(child.dock_gutter)
        if widget.region not in window:
            self.scroll_to_widget(widget, animate=False, immediate=True)
