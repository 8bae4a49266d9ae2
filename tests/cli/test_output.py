"""Nothing stored is written raw to a terminal: tables, notes, errors and machine formats
show control and bidi characters escaped, and markup literally."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from core.helpers import HOSTILE_NAME, HOSTILE_SHOWN, store_raw

from usermgmt.cli import readers

# What a terminal would obey: C0 but line breaks and tabs (tables and CSV use those),
# DEL, C1, bidi controls.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def eve(services, operator, ctx):
    user = services.users.create(operator, ctx, {"email": "eve@example.com", "username": "eve"})
    store_raw(services, user.id, first_name=HOSTILE_NAME, bio=f"line one\n{HOSTILE_NAME}")
    return user


def test_tables_show_stored_controls_escaped(cli, eve):
    for args in (("users", "list"), ("users", "show", "eve")):
        run = cli(*args)
        assert run.exit_code == 0, run.stderr
        assert not RAW.search(run.stdout), args
        assert HOSTILE_SHOWN in run.stdout, args  # markup shown as written, not applied
    shown = cli("users", "show", "eve").stdout
    assert f"line one\\n{HOSTILE_SHOWN}" in shown  # a value is one line of the table


def test_audit_table_shows_changes_escaped(cli, services, operator, ctx, eve):
    services.users.update(operator, ctx, str(eve.id), {"first_name": "Eve"})  # before: stored
    run = cli("audit", "list", "--target", "eve")
    assert run.exit_code == 0 and not RAW.search(run.stdout)
    assert "\\u001b[2J" in run.stdout and "\\x9b1m\\u202e" in run.stdout


def test_json_and_jsonl_escape_what_json_leaves_raw_and_stay_exact(cli, eve):
    documents = {
        "json": cli("users", "show", "eve", "-o", "json").stdout,
        "list-json": cli("users", "list", "-o", "json").stdout,
        "jsonl": cli("users", "list", "-o", "jsonl").stdout,
        "export": cli("users", "export", "-o", "jsonl").stdout,
    }
    for name, text in documents.items():
        assert not RAW.search(text), name
        assert "\\u009b" in text and "\\u202e" in text and "\\u007f" in text, name
    assert json.loads(documents["json"])["first_name"] == HOSTILE_NAME
    assert json.loads(documents["list-json"])[0]["first_name"] == HOSTILE_NAME
    assert json.loads(documents["jsonl"])["first_name"] == HOSTILE_NAME
    assert json.loads(documents["export"])["first_name"] == HOSTILE_NAME


def test_csv_escapes_controls_and_reads_back_exactly(cli, eve):
    for args in (("users", "list", "-o", "csv"), ("users", "export", "-o", "csv")):
        text = cli(*args).stdout
        assert not RAW.search(text), args
        row = next(csv.DictReader(io.StringIO(text)))
        assert row["first_name"] == HOSTILE_SHOWN  # the escapes printable shows too
    # What import reads from the export is the stored text itself (whether the write
    # rules then take it is theirs to say).
    source = readers.Source(io.BytesIO(text.encode()), "export.csv")
    [(line, record)] = list(readers.read_csv(source, text.split("\n", 1)[0].split(",")))
    assert (line, record["first_name"]) == (2, HOSTILE_NAME)
    assert record["bio"] == f"line one\n{HOSTILE_NAME}"


def test_errors_quote_input_escaped(cli, eve):
    run = cli("users", "show", "\x1b]0;owned\x07\u202e")
    assert run.exit_code == 3
    assert not RAW.search(run.stderr)
    assert run.error_line == "error: NOT_FOUND: No user '\\x1b]0;owned\\x07\\u202e'"
    missing = cli("users", "import", "/nonexistent/\x1b[2J\u202e.csv")  # quoted as given
    assert missing.exit_code == 2 and not RAW.search(missing.stderr)
    assert "/nonexistent/\\x1b[2J\\u202e.csv" in missing.error_line
    as_json = cli("users", "show", "\x9b2J", "-o", "json")
    assert not RAW.search(as_json.stderr)
    assert "2J" in json.loads(as_json.stderr)["error"]["message"]
