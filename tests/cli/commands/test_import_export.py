"""`usermgmt users import` / `export`: formats, bad rows, encodings, round trips."""

from __future__ import annotations

import csv
import io
import json

import bcrypt
import pytest
from conftest import STRONG_PASSWORD

from usermgmt.cli import readers

HASH = bcrypt.hashpw(b"Imported-Passw0rd", bcrypt.gensalt(4)).decode()


def write(tmp_path, name: str, content: str | bytes):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return str(path)


def emails(services, operator, include_deleted=False):
    page = services.user_reads.list(operator, {"limit": 100, "include_deleted": include_deleted})
    return sorted(u.email for u in page.data)


def exported(services, operator):
    return {
        r["email"]: r for r in services.transfer.export_users(operator, include_password_hash=True)
    }


# ---- formats -------------------------------------------------------------------


def test_csv_with_roles_and_hashes(cli, tmp_path, services, operator):
    path = write(
        tmp_path,
        "u.csv",
        "email,username,first_name,roles,password_hash,timezone\n"
        f"ann@example.com,ann,Ann,admin;moderator,{HASH},Europe/Paris\n"
        "bob@example.com,,,,,\n",
    )
    run = cli("users", "import", path)
    assert run.exit_code == 0, run.stderr
    assert "2 created" in run.stdout
    assert run.stderr == ""  # no progress bar or note off a terminal
    rows = exported(services, operator)
    assert rows["ann@example.com"]["roles"] == ["admin", "moderator"]
    assert rows["ann@example.com"]["password_hash"] == HASH  # kept as it is
    assert rows["ann@example.com"]["timezone"] == "Europe/Paris"
    assert rows["bob@example.com"]["roles"] == ["user"]
    assert rows["bob@example.com"]["username"] is None


def test_json_array_and_jsonl(cli, tmp_path, services, operator):
    array = write(
        tmp_path,
        "a.json",
        json.dumps(
            [
                {"email": "j1@example.com", "roles": ["moderator"], "is_active": False},
                {"email": "j2@example.com", "password": STRONG_PASSWORD},
            ],
            indent=2,
        ),
    )
    lines = write(
        tmp_path,
        "b.jsonl",
        '{"email": "l1@example.com"}\n\n{"email": "l2@example.com", "roles": "admin"}\n',
    )
    assert cli("users", "import", array).exit_code == 0
    assert cli("users", "import", lines).exit_code == 0
    rows = exported(services, operator)
    assert set(rows) == {"j1@example.com", "j2@example.com", "l1@example.com", "l2@example.com"}
    assert rows["j1@example.com"]["is_active"] is False
    assert rows["l2@example.com"]["roles"] == ["admin"]
    # A plaintext password is hashed (bcrypt), never stored or printed as is.
    assert bcrypt.checkpw(
        STRONG_PASSWORD.encode(), rows["j2@example.com"]["password_hash"].encode()
    )


def test_format_from_stdin_is_sniffed_or_given(cli, services, operator):
    run = cli("users", "import", "-", input='{"email": "s1@example.com"}\n')
    assert run.exit_code == 0, run.stderr
    run = cli("users", "import", "-", "--format", "csv", input="email\ns2@example.com\n")
    assert run.exit_code == 0, run.stderr
    assert emails(services, operator) == ["s1@example.com", "s2@example.com"]


# ---- bad rows --------------------------------------------------------------------


BAD_CSV = (
    "email,username,roles,password\n"
    "good@example.com,good,user,\n"
    "not-an-email,,,\n"
    "weak@example.com,,,tiny1A\n"
    "x@example.com,,wizard,\n"
    "good@example.com,,,\n"
    '"multi@example.com",,"user",\n'
    "too,many,fields,here,extra\n"
)


def test_bad_rows_are_reported_by_line_and_nothing_is_written(cli, tmp_path, services, operator):
    run = cli("users", "import", write(tmp_path, "bad.csv", BAD_CSV))
    assert run.exit_code == 2
    assert run.error_line == "error: VALIDATION_ERROR: 5 bad rows; nothing was imported"
    messages = run.stderr.splitlines()
    assert any(
        m.endswith("line 3: email: Invalid email format: An email address must have an @-sign.")
        for m in messages
    ), messages
    assert any("line 4: password must be at least 8 characters" in m for m in messages)
    assert "tiny1A" not in run.stderr  # a password is never echoed
    assert any("line 5:" in m and "role" in m for m in messages)
    assert any("line 6: email good@example.com appears twice" in m for m in messages)
    assert any("line 8: has 5 fields, the header has 4" in m for m in messages)
    assert emails(services, operator) == []


def test_report_as_json(cli, tmp_path):
    run = cli("users", "import", write(tmp_path, "bad.csv", BAD_CSV), "-o", "json")
    assert run.exit_code == 2
    report = run.json()
    assert report["committed"] is False
    assert [e["line"] for e in report["errors"]] == [3, 4, 5, 6, 8]
    assert json.loads(run.stderr)["error"]["code"] == "VALIDATION_ERROR"


def test_max_errors_stops_there_and_says_what_was_not_checked(cli, tmp_path, services, operator):
    lines = ["email,first_name"]
    lines += [f"{'broken' if i % 3 == 0 else f'u{i}@example.com'},N{i}" for i in range(1, 2001)]
    path = write(tmp_path, "many.csv", "\n".join(lines) + "\n")  # bad: every third row
    run = cli("users", "import", path, "--max-errors", "2", "--on-conflict", "skip")
    assert run.exit_code == 2
    assert run.error_line == (
        "error: VALIDATION_ERROR: stopped at line 7 after 2 bad rows (--max-errors); "
        "1,994 rows after it not checked; nothing was imported"
    )
    assert [m.split(": ")[1] for m in run.stderr.splitlines()[:-1]] == ["line 4", "line 7"]
    assert emails(services, operator) == []  # stopped: nothing written, even with skip

    report = cli("users", "import", path, "--max-errors", "2", "-o", "json").json()
    assert (report["stopped_at_line"], report["not_checked"], report["rows"]) == (7, 1994, 6)
    assert [e["line"] for e in report["errors"]] == [4, 7]

    everything = cli("users", "import", path, "--max-errors", "0", "-o", "json")
    report = everything.json()
    assert len(report["errors"]) == 666 and report["rows"] == 2000
    assert report["stopped_at_line"] is None and report["not_checked"] == 0
    assert "666 bad rows; nothing was imported" in everything.stderr

    by_default = cli("users", "import", path, "-o", "json").json()  # stops at 1,000
    assert len(by_default["errors"]) == 666 and by_default["stopped_at_line"] is None
    assert cli("users", "import", path, "--max-errors", "-1").exit_code == 2


def test_skip_writes_the_good_rows(cli, tmp_path, services, operator):
    run = cli("users", "import", write(tmp_path, "bad.csv", BAD_CSV), "--on-conflict", "skip")
    assert run.exit_code == 2  # bad rows still mean exit 2 ...
    assert "skipped; the other rows were imported" in run.error_line
    assert emails(services, operator) == ["good@example.com", "multi@example.com"]  # ... written


def test_dry_run_writes_nothing(cli, tmp_path, services, operator):
    path = write(tmp_path, "ok.csv", "email\nd1@example.com\nd2@example.com\n")
    run = cli("users", "import", path, "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "2 created" in run.stdout and "dry run" in run.stdout
    assert emails(services, operator) == []


def test_existing_email_fails_skips_or_updates(cli, tmp_path, services, operator):
    cli(
        "users",
        "import",
        write(tmp_path, "a.csv", "email,first_name,roles\ne@example.com,Old,admin\n"),
    )
    again = write(tmp_path, "b.csv", "email,first_name\ne@example.com,New\n")
    fail = cli("users", "import", again)
    assert fail.exit_code == 2 and "e@example.com already exists" in fail.stderr
    skip = cli("users", "import", again, "--on-conflict", "skip")
    assert skip.exit_code == 0 and "1 skipped" in skip.stdout
    update = cli("users", "import", again, "--on-conflict", "update")
    assert update.exit_code == 0 and "1 updated" in update.stdout
    user = services.user_reads.find(operator, "e@example.com")
    # Only the columns in the file changed: the roles column was absent, admin stays.
    assert (user.first_name, user.roles) == ("New", ["admin"])


@pytest.mark.parametrize(
    "content, message",
    [
        (b"email,first_name\nz@example.com,Jos\xe9\n", "line 2: not valid UTF-8 (byte 0xe9)"),
        ("email\nok@example.com\n".encode("utf-16"), "line 1: the file is UTF-16"),
        (b"email,nickname\nz@example.com,zed\n", "unknown column(s) 'nickname'"),
        (b"first_name\nZed\n", "the header has no 'email' column"),
        (b'[{"email": "a@example.com"},\n {"email" "b@example.com"}]', "line 2: invalid JSON"),
        (b'{"email": "a@example.com"}', None),
    ],
    ids=["latin-1", "utf-16", "unknown-column", "no-email", "broken-json", "jsonl-ok"],
)
def test_unreadable_files_are_exit_2_naming_the_line(
    cli, tmp_path, services, operator, content, message
):
    name = "x.json" if content.startswith((b"[", b"{")) else "x.csv"
    run = cli("users", "import", write(tmp_path, name, content))
    if message is None:
        assert run.exit_code == 0, run.stderr
        return
    assert run.exit_code == 2
    assert message in run.error_line
    assert emails(services, operator) == []


def test_utf8_bom_and_crlf_are_fine(cli, tmp_path, services, operator):
    content = "\ufeffemail,first_name\r\nbom@example.com,Zoë\r\n".encode()
    run = cli("users", "import", write(tmp_path, "bom.csv", content))
    assert run.exit_code == 0, run.stderr
    assert services.user_reads.find(operator, "bom@example.com").first_name == "Zoë"


def test_missing_file_is_a_usage_error(cli, tmp_path):
    run = cli("users", "import", str(tmp_path / "nope.csv"))
    assert run.exit_code == 2
    assert "cannot read" in run.error_line and "No such file" in run.error_line


def test_ctrl_c_during_import_commits_nothing(cli, tmp_path, services, operator, monkeypatch):
    rows = "".join(f"c{i}@example.com\n" for i in range(2500))
    path = write(tmp_path, "big.csv", "email\n" + rows)
    real = readers.read_csv

    def interrupted(source, known):
        for n, item in enumerate(real(source, known)):
            if n == 2200:  # after two chunks went to the database
                raise KeyboardInterrupt
            yield item

    monkeypatch.setattr(readers, "read_csv", interrupted)
    run = cli("users", "import", path)
    assert run.exit_code == 130
    assert run.error_line.startswith("error: INTERRUPTED:")
    assert emails(services, operator) == []


# ---- export and the round trip ---------------------------------------------------


def test_export_formats_and_file(cli, tmp_path, seed):
    seed(3)
    jsonl = cli("users", "export").jsonl()  # jsonl is the default
    assert sorted(r["email"] for r in jsonl) == [f"user{i}@example.com" for i in range(3)]
    assert "password_hash" not in jsonl[0]
    as_json = cli("users", "export", "-o", "json").json()
    assert as_json == jsonl
    rows = list(csv.DictReader(io.StringIO(cli("users", "export", "--format", "csv").stdout)))
    assert rows[0]["roles"] == "user" and rows[0]["is_active"] == "true"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "users.csv"
    run = cli("users", "export", "--output-file", str(target))  # format from the extension
    assert run.exit_code == 0 and run.stdout == ""
    assert target.read_text().startswith("id,email,username,")
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert [p.name for p in out_dir.iterdir()] == ["users.csv"]  # no temporary file left
    assert cli("users", "export", "-o", "table").exit_code == 2


def test_empty_export_still_has_a_csv_header(cli):
    assert cli("users", "export", "-o", "csv").stdout.startswith("id,email,username,")
    assert cli("users", "export", "-o", "json").json() == []


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_round_trip_keeps_everything_but_what_export_leaves_out(
    cli, tmp_path, fmt, services, operator, ctx
):
    users = services.users
    users.create(
        operator,
        ctx,
        {
            "email": "a@example.com",
            "username": "ann",
            "first_name": "Ann",
            "last_name": 'O"Hara, Jr; Esq',
            "roles": ["admin", "moderator"],
            "password": STRONG_PASSWORD,
            "email_verified": True,
            "profile": {
                "phone": "+1 555 0100",
                "bio": "line one\nline two",
                "timezone": "Europe/Paris",
                "locale": "fr",
            },
        },
    )
    users.create(operator, ctx, {"email": "b@example.com", "is_active": False})
    users.create(  # what a spreadsheet would run, and text that looks like the guards
        operator,
        ctx,
        {
            "email": "c@example.com",
            "username": "-dash",
            "first_name": "=1+2",
            "last_name": '\'=HYPERLINK("http://x")',
            "profile": {"bio": "@here \\x1b C:\\path \\\\ '-"},
        },
    )
    before = exported(services, operator)
    target = tmp_path / f"all.{fmt}"
    assert cli("users", "export", "-O", str(target), "--include-password-hashes").exit_code == 0
    if fmt == "csv":
        rows = {r["email"]: r for r in csv.DictReader(target.open(encoding="utf-8"))}
        assert rows["c@example.com"]["first_name"] == "'=1+2"
        assert rows["c@example.com"]["last_name"] == "''=HYPERLINK(\"http://x\")"
        assert rows["c@example.com"]["username"] == "'-dash"
        assert rows["c@example.com"]["bio"] == "'@here \\\\x1b C:\\path \\\\\\ '-"
        assert rows["a@example.com"]["phone"] == "'+1 555 0100"

    other = tmp_path / "other.db"
    url = f"sqlite:///{other}"
    run = cli("users", "import", str(target), url=url)
    assert run.exit_code == 0, run.stderr
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    second = build_services(load_settings(database_url=url))
    try:
        after = exported(second, operator)
    finally:
        second.close()
    system = {"id", "created_at", "last_login_at", "deleted_at"}

    def strip(rows):
        return {k: {f: v for f, v in r.items() if f not in system} for k, r in rows.items()}

    assert strip(after) == strip(before)


def test_export_help_says_what_a_round_trip_loses(cli):
    help_text = cli("users", "export", "--help").stdout
    assert "--include-password-hashes" in help_text
    assert "loses" in help_text and "passwords" in help_text


def test_export_and_import_stream(tmp_path):
    """The readers hand rows out one at a time (constant memory for any file size)."""
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"email": f"u{i}@example.com"}) + "\n" for i in range(5000)))
    with open(path, "rb") as raw:
        source = readers.Source(raw, "big.jsonl")
        rows = readers.read_jsonl(source)
        first = next(rows)
        assert first == (1, {"email": "u0@example.com"})
        assert source.position < path.stat().st_size  # only the first chunk was read
