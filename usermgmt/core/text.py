"""Text from users, made safe to show, and the cell encoding of every CSV file.

Stored text may hold characters a terminal obeys instead of showing: C0
controls (ESC starts the sequences that clear or recolour a screen), DEL, C1
controls (U+009B is a one-character CSI) and the bidirectional overrides and
isolates (U+202A-U+202E, U+2066-U+2069) that make text read backwards. Older
rows and imports can hold them even though new writes refuse them, so every
face shows text through :func:`printable`.

CSV files are opened in spreadsheets, which run a cell that starts with ``=``,
``+``, ``-`` or ``@`` (or a tab or CR before one) as a formula. :func:`to_csv_cell`
neutralises both dangers and :func:`from_csv_cell` reverses it exactly, so an
export imports back to the same values (docs/cli.md, "CSV cells").
"""

from __future__ import annotations

import re

# C0, DEL, C1, and the bidirectional embeddings, overrides and isolates.
_UNSAFE_CLASS = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_UNSAFE_CLASS}]")
# The same in CSV, except tab and line feed: CSV quotes them, and a cell may
# hold several lines. (CR is escaped: printed raw it moves the cursor back.)
_CSV_UNSAFE_CLASS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _show(match: re.Match[str]) -> str:
    return _SHORT.get(match.group()) or _escape(match)


def printable(text: str) -> str:
    """``text`` with each control or bidi character shown as an escape (``\\x1b``,
    ``\\u202e``, ``\\n``).

    Line breaks and tabs are escaped too: a value is one line in a table cell,
    and cannot pose as another row. Text without such characters is returned
    as it is (the common case costs one scan).
    """
    if _UNSAFE.search(text) is None:
        return text
    return _UNSAFE.sub(_show, text)


def printable_lines(text: str) -> str:
    """:func:`printable` for text of several lines: its line breaks are kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def has_unsafe(text: str) -> bool:
    """Whether :func:`printable` would change ``text``."""
    return _UNSAFE.search(text) is not None


# ---- CSV cells ---------------------------------------------------------------------
#
# Escapes: a dangerous character becomes \xHH or \uHHHH; a backslash is doubled
# only where a reader could take it for the start of an escape (before a
# backslash, a dangerous character, x and two hex digits, or u and four), so
# text with ordinary backslashes is written unchanged.
#
# Formulas: a cell that starts with a trigger (= + - @ tab CR), after any
# number of apostrophes, gets one more apostrophe in front (OWASP's advice;
# spreadsheets show the value without it). Reading removes one apostrophe
# from exactly such cells, so a value that really starts with "'=" survives.

_CSV_ESCAPES = re.compile(
    f"[{_CSV_UNSAFE_CLASS}]|\\\\(?=[\\\\{_CSV_UNSAFE_CLASS}]|x[0-9a-fA-F]{{2}}|u[0-9a-fA-F]{{4}})"
)
_CSV_UNSAFE = re.compile(f"[{_CSV_UNSAFE_CLASS}]")
_CSV_UNESCAPES = re.compile(r"\\(?:\\|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))")
_FORMULA = re.compile("'*[=+\\-@\t\r]")
_NEUTRALISED = re.compile("'+[=+\\-@\t\r]")


def _csv_escape(match: re.Match[str]) -> str:
    found = match.group()
    return "\\\\" if found == "\\" else _escape(match)


def _csv_unescape(match: re.Match[str]) -> str:
    code = match.group(1) or match.group(2)
    if code is None:
        return "\\"
    char = chr(int(code, 16))
    # Only what to_csv_cell writes is read back: other escapes stay as text.
    return char if _CSV_UNSAFE.fullmatch(char) else match.group()


def to_csv_cell(text: str) -> str:
    """A CSV cell for ``text``: no terminal controls, no formula (see the module docs)."""
    if "\\" in text or has_unsafe(text):
        text = _CSV_ESCAPES.sub(_csv_escape, text)
    if _FORMULA.match(text):
        return "'" + text
    return text


_CSV_SPECIAL = re.compile(f"[\\\\{_CSV_UNSAFE_CLASS}]")
_CSV_STARTS = frozenset("'=+-@\t\r")


def to_csv_row(texts: list[str]) -> list[str]:
    """:func:`to_csv_cell` of each text; a row that needs none costs one scan (export speed)."""
    if _CSV_SPECIAL.search("\n".join(texts)) is None and _CSV_STARTS.isdisjoint(
        [text[:1] for text in texts]
    ):
        return texts
    return [to_csv_cell(text) for text in texts]


def from_csv_cell(cell: str) -> str:
    """The text :func:`to_csv_cell` made ``cell`` from."""
    if _NEUTRALISED.match(cell):
        cell = cell[1:]
    if "\\" in cell:
        cell = _CSV_UNESCAPES.sub(_csv_unescape, cell)
    return cell


# ---- JSON --------------------------------------------------------------------------

# What json.dumps(..., ensure_ascii=False) leaves raw: it escapes C0 already.
_JSON_RAW = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_safe(document: str) -> str:
    """JSON text with DEL, C1 and bidi characters written as ``\\uXXXX`` escapes.

    For ``json.dumps(..., ensure_ascii=False)`` output, which keeps other
    non-ASCII text readable: such characters can only occur inside its
    strings, where the escape decodes to the same character.
    """
    if _JSON_RAW.search(document) is None:
        return document
    return _JSON_RAW.sub(_json_escape, document)
