"""A footer rebuilt only when the keys it shows change.

Textual's ``Footer`` rebuilds all its keys (a widget each, restyled) whenever the
screen's bindings are signalled as updated: on every focus change and every return
to the screen, with the same keys. That rebuild was most of the time of a switch
between two screens (about 100 ms of the `a` and `escape` keys at a million users,
bench/RESULTS.md). Here it happens only when what the footer shows differs.

What it shows is recorded when it is composed, from the bindings that compose read:
a rebuild asked for and run later (after a refresh) may show other keys than those
of the moment it was asked for, such as while a pushed screen's focus is restored.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer


def _shown_keys(screen: Screen) -> tuple:
    return tuple(
        (binding.key, binding.key_display, binding.description, enabled, tooltip)
        for (_node, binding, enabled, tooltip) in screen.active_bindings.values()
        if binding.show
    )


class SteadyFooter(Footer):
    _shown: tuple | None = None

    def bindings_changed(self, screen: Screen) -> None:
        if (
            self._bindings_ready
            and self.is_attached
            and screen is self.screen
            and _shown_keys(screen) == self._shown
        ):
            return
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = _shown_keys(self.screen)
        yield from super().compose()
