"""A QR code drawn in the terminal: segno's own compact output (half blocks, two modules a
row), light modules as white blocks on black so it scans on a dark or a light theme.

To keep it small, error correction is L and the text goes to segno in segments: runs of
upper-case letters, digits and URI punctuation (the base32 secret, percent escapes, an
address) in QR's alphanumeric mode, the rest as bytes; segno picks each segment's mode.
An ``otpauth://`` URI of up to ~160 characters is then version 7 (45 modules): with a
quiet zone of one module that is 47 columns by 24 rows, what an 80x24 terminal has.
The quiet zone is two modules when the screen is tall enough.
"""

from __future__ import annotations

import io
import re

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

ERROR_LEVEL = "l"  # segno raises it by itself when that costs no extra modules
STYLE = Style(color="#ffffff", bgcolor="#000000")


# QR's alphanumeric set; a run shorter than this costs more to switch to than it saves.
_ALPHANUMERIC_RUN = re.compile(r"[0-9A-Z $%*+\-./:]{11,}")


def segments(content: str) -> list[str]:
    """``content`` cut into pieces whose concatenation is ``content``."""
    out, pos = [], 0
    for run in _ALPHANUMERIC_RUN.finditer(content):
        if run.start() > pos:
            out.append(content[pos : run.start()])
        out.append(run.group())
        pos = run.end()
    if pos < len(content):
        out.append(content[pos:])
    return out


def make(content: str):
    import segno

    return segno.make(segments(content), error=ERROR_LEVEL, micro=False)


def rows_needed(content: str, border: int) -> int:
    _width, height = make(content).symbol_size(border=border)
    return (height + 1) // 2


def half_blocks(content: str, border: int = 2) -> list[str]:
    """The QR code of ``content`` as segno draws it with half blocks, one string a row."""
    out = io.StringIO()
    make(content).terminal(out=out, border=border, compact=True)
    return out.getvalue().splitlines()


class QrCode(Static):
    """``content`` as a QR code; the largest quiet zone (2 or 1) that fits ``max_rows``."""

    DEFAULT_CSS = """
    QrCode { width: auto; height: auto; }
    """

    def __init__(self, content: str, *, max_rows: int, id: str | None = None) -> None:
        self.border_modules = 2 if rows_needed(content, 2) <= max_rows else 1
        self.lines = half_blocks(content, self.border_modules)
        super().__init__(Text("\n".join(self.lines), style=STYLE, no_wrap=True), id=id)
