"""Tables that never lie (usermgmt/cli/tables.py) at 80, 100 and 120 columns, and -o wide."""

from __future__ import annotations

import io
import re

import pytest

from usermgmt.cli.commands.users import USER_COLUMNS
from usermgmt.cli.output import render
from usermgmt.cli.tables import CHUNK

ANSI = re.compile(r"\x1b\[[0-9;]*m")
USER = {
    "id": "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
    "email": "a.very.long.email.address@example-company.com",
    "username": "averylongusername",
    "kind": "person",
    "first_name": "Annabelle",
    "last_name": "Smithers-Wolfington",
    "roles": ["admin", "moderator", "user"],
    "mfa_enabled": False,
    "status": "unverified",
    "created_at": "2024-05-01T12:03:04Z",
}
HEADERS = [c.header for c in USER_COLUMNS]
FULL = {
    "ID": USER["id"][:8],
    "EMAIL": USER["email"],
    "USERNAME": USER["username"],
    "KIND": "person",
    "NAME": "Annabelle Smithers-Wolfington",
    "ROLES": "admin, moderator, user",
    "MFA": "no",
    "STATUS": "unverified",
    "CREATED": "2024-05-01 12:03",
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def table_at(columns: int, monkeypatch, rows: int = 2, output: str = "table") -> list[str]:
    monkeypatch.setenv("COLUMNS", str(columns))
    out = Terminal()
    render([USER] * rows, output=output, columns=USER_COLUMNS, stream=out)
    return [ANSI.sub("", line).rstrip() for line in out.getvalue().splitlines()]


def cells(header: str, line: str) -> dict[str, str]:
    """Cut ``line`` at the columns the header line starts."""
    found = list(re.finditer(r"\S+", header))
    starts, names = [m.start() for m in found], [m.group() for m in found]
    bounds = [*starts[1:], None]
    return {n: line[s:e].strip() for n, s, e in zip(names, starts, bounds, strict=True)}


@pytest.mark.parametrize("width", [80, 100, 120])
def test_every_column_on_one_line_cut_with_an_ellipsis(width, monkeypatch, capsys):
    header, rule, *rows = table_at(width, monkeypatch)
    # At 80 columns the least useful column (MFA) gives way, and stderr says so.
    left_out = ["MFA"] if width == 80 else []
    assert header.split() == [h for h in HEADERS if h not in left_out]  # nothing else dropped
    assert len(rows) == 2  # no cell wrapped onto a second line
    assert max(len(line) for line in (header, rule, *rows)) <= width
    for name, shown in cells(header, rows[0]).items():
        full = FULL[name]
        assert shown == full or (shown.endswith("…") and full.startswith(shown[:-1])), name
    err = capsys.readouterr().err
    if left_out:
        assert f"left out at this terminal width: {', '.join(left_out)}" in err
    else:
        assert err == ""


def test_too_narrow_for_every_column_says_which_are_left_out(monkeypatch, capsys):
    header, *_ = table_at(50, monkeypatch)
    err = capsys.readouterr().err
    left_out = [h for h in HEADERS if h not in header.split()]
    assert left_out and "ID" in header and "EMAIL" in header
    assert f"left out at this terminal width: {', '.join(left_out)}" in err
    assert "-o wide" in err


def test_wide_shows_everything_whole(monkeypatch):
    _header, _rule, row = table_at(80, monkeypatch, rows=1, output="wide")
    assert "…" not in row
    assert USER["id"] in row and USER["email"] in row and "admin, moderator, user" in row


def test_off_a_terminal_nothing_is_cut_and_ids_are_short():
    out = io.StringIO()
    render([USER], output="table", columns=USER_COLUMNS, stream=out)
    _header, _rule, row = out.getvalue().splitlines()
    assert "…" not in row and USER["email"] in row
    assert row.startswith(USER["id"][:8] + " ") and USER["id"] not in row


def test_a_long_table_streams_in_chunks_with_the_same_columns(monkeypatch):
    lines = table_at(100, monkeypatch, rows=CHUNK * 2 + 5)
    _header, _rule, *rows = lines
    assert len(rows) == CHUNK * 2 + 5
    assert len(set(rows)) == 1  # every chunk cut the same way


def test_batches_print_as_they_come_under_one_header():
    from usermgmt.cli.tables import write_batches

    out = io.StringIO()
    count = write_batches(iter([[], [USER], [], [USER, USER]]), out, USER_COLUMNS)
    lines = out.getvalue().splitlines()
    assert count == 3 and len(lines) == 5
    assert lines[0].split() == HEADERS and set(lines[1]) == {"\u2500"}
    assert len(set(lines[2:])) == 1
