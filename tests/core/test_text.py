"""usermgmt.core.text: what is shown for stored text, and the CSV cell encoding."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from usermgmt.core.text import from_csv_cell, json_safe, printable, to_csv_cell, to_csv_row

OBEYED = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Text made of the characters the encodings care about, so collisions are common.
TRICKY = st.text(
    alphabet=st.sampled_from(list("\\'xu=+-@\t\r\n0aF9 \x00\x1b\x7f\x9b\u202e\u2069\u00e9")),
    max_size=14,
)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),
        ("a\x9bb\x7fc\x00", "a\\x9bb\\x7fc\\x00"),
        ("\u202eevil\u2066x\u2069", "\\u202eevil\\u2066x\\u2069"),
        ("one\ntwo\tthree\rfour", "one\\ntwo\\tthree\\rfour"),
        ("[red]markup[/red] é ü 中", "[red]markup[/red] é ü 中"),
    ],
)
def test_printable_escapes_what_a_terminal_obeys(text, shown):
    assert printable(text) == shown


@settings(max_examples=500)
@given(st.one_of(TRICKY, st.text()))
def test_printable_leaves_nothing_to_obey(text):
    assert not OBEYED.search(printable(text))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("Ada", "Ada"),
        ("=1+2", "'=1+2"),
        ("+44 20 7946 0958", "'+44 20 7946 0958"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "\\x0d=1"),  # escaped, so no longer a trigger
        ("'=1", "''=1"),  # a value that really starts with an apostrophe and a trigger
        ("''-x", "'''-x"),
        ("'quoted'", "'quoted'"),
        ("a=b", "a=b"),
        ("C:\\Users\\ada", "C:\\Users\\ada"),  # ordinary backslashes unchanged
        ("\\x1b", "\\\\x1b"),  # text that looks like an escape
        ("\\\\", "\\\\\\"),
        ("\x1b[31m", "\\x1b[31m"),
        ("\\\x1b", "\\\\\\x1b"),
        ("two\nlines\tok", "two\nlines\tok"),  # CSV quotes these
        ("\u202eevil", "\\u202eevil"),
    ],
)
def test_csv_cells(value, cell):
    assert to_csv_cell(value) == cell
    assert from_csv_cell(cell) == value


@pytest.mark.parametrize(
    ("cell", "value"),
    [("\\x41", "\\x41"), ("\\u00e9", "\\u00e9"), ("\\ud800", "\\ud800"), ("'x", "'x")],
)
def test_escapes_csv_cells_never_hold_stay_text(cell, value):
    """A hand-written file's \\x41 or \\ud800 is text (never a lone surrogate)."""
    assert from_csv_cell(cell) == value


@settings(max_examples=3000)
@given(st.one_of(TRICKY, st.text()))
def test_csv_cells_round_trip_and_are_inert(value):
    cell = to_csv_cell(value)
    assert from_csv_cell(cell) == value
    assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", cell)
    assert not re.match("[=+\\-@\t\r]", cell)


@settings(max_examples=1000)
@given(st.lists(st.one_of(TRICKY, st.sampled_from(["", "Ada", "a@example.com", "'x"]))))
def test_a_row_is_its_cells(texts):
    assert to_csv_row(texts) == [to_csv_cell(text) for text in texts]


@settings(max_examples=500)
@given(st.recursive(st.one_of(st.none(), TRICKY, st.text()), st.lists, max_leaves=5))
def test_json_safe_is_the_same_document(value):
    text = json_safe(json.dumps({"v": value}, ensure_ascii=False))
    assert json.loads(text) == {"v": value}
    assert not OBEYED.search(text)
