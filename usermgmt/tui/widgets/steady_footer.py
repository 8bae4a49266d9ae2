"""A footer rebuilt only when the keys it shows change.

Textual's ``Footer`` rebuilds all its keys (a widget each, restyled) whenever the
screen's bindings are signalled as updated: on every focus change and every return
to the screen, with the same keys. That rebuild was most of the time of a switch
between two screens (about 100 ms of the `a` and `escape` keys at a million users,
bench/RESULTS.md). Here it happens only when what the footer shows differs.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer


class SteadyFooter(Footer):
    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        shown = tuple(
            (binding.key, binding.key_display, binding.description, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in screen.active_bindings.values()
            if binding.show
        )
        if shown == self._shown and self._bindings_ready:
            return
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self._shown = shown  # what the rebuild about to happen will show
        super().bindings_changed(screen)
