"""NO_COLOR as no-color.org says: set to anything but the empty string, no colour; empty is
unset. Textual alone would count an empty one (usermgmt/tui/no_color.py)."""

from __future__ import annotations

import io
import re
import sys

import pytest

from usermgmt.cli.progress import progress_bar

COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")  # a foreground colour


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("value", "monochrome"), [(None, False), ("", False), ("1", True)])
def test_the_console_is_monochrome_only_when_no_color_is_set_to_something(
    value, monochrome, make_ui_app, monkeypatch
):
    if value is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", value)
    assert make_ui_app().no_color is monochrome


@pytest.mark.parametrize(("value", "coloured"), [("", True), ("1", False)])
def test_the_cli_colours_only_without_a_non_empty_no_color(value, coloured, monkeypatch):
    monkeypatch.setenv("NO_COLOR", value)
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("FORCE_COLOR", "COLORTERM", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    with progress_bar("Importing", total=10, enabled=True) as bar:
        bar.advance(5)
    assert bool(COLOUR.search(err.getvalue())) is coloured
