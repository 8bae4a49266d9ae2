"""`usermgmt audit head` and `audit verify --expect-head`, on both databases."""

from __future__ import annotations

import re

from conftest import STRONG_PASSWORD
from sqlalchemy import create_engine, text

HEAD = re.compile(r"^(\d+):([0-9a-f]{64})$")


def rewind(database_url: str, backend: str, to_seq: int) -> None:
    """Delete the newest events and point the head at the last one kept."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if backend == "postgres":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        conn.execute(text("DELETE FROM audit_events WHERE seq > :n"), {"n": to_seq})
        kept = conn.execute(text("SELECT hash FROM audit_events WHERE seq = :n"), {"n": to_seq})
        conn.execute(
            text("UPDATE audit_head SET seq = :n, hash = :h"),
            {"n": to_seq, "h": kept.scalar() or "0" * 64},
        )
    engine.dispose()


def make(cli, email: str) -> None:
    run = cli("users", "create", "--email", email, "--password-stdin", input=STRONG_PASSWORD)
    assert run.exit_code == 0, run.stderr


def test_head_prints_seq_and_hash(cli):
    empty = cli("audit", "head")
    assert (empty.exit_code, empty.stdout) == (0, f"0:{'0' * 64}\n")
    make(cli, "ann@example.com")
    line = cli("audit", "head").stdout.strip()
    assert HEAD.match(line) and line.startswith("1:")
    body = cli("audit", "head", "-o", "json").json()
    assert body == {"seq": 1, "hash": line[2:], "head": line}
    verified = cli("audit", "verify", "-o", "json").json()
    assert verified["ok"] is True and verified["head"] == line


def test_verify_expect_head_catches_a_truncated_chain(cli, database_url, backend):
    make(cli, "ann@example.com")
    assert cli("users", "lock", "ann@example.com").exit_code == 0
    recorded = cli("audit", "head").stdout.strip()
    assert cli("audit", "verify", "--expect-head", recorded).exit_code == 0
    rewind(database_url, backend, 1)

    assert cli("audit", "verify").exit_code == 0  # consistent from the inside
    broken = cli("audit", "verify", "--expect-head", recorded)
    assert broken.exit_code == 6
    assert broken.error_line.startswith("error: AUDIT_CHAIN_BROKEN: Audit chain broken at event #2")
    assert "truncated or rewound" in broken.error_line
    as_json = cli("audit", "verify", "--expect-head", recorded, "-o", "json")
    assert as_json.exit_code == 6
    body = as_json.json()
    assert (body["ok"], body["bad_seq"], body["head"]) == (
        False,
        2,
        cli("audit", "head").stdout.strip(),
    )


def test_verify_names_users_without_a_creation_event(cli, database_url, backend):
    make(cli, "ann@example.com")
    make(cli, "bob@example.com")
    bob = cli("users", "show", "bob@example.com", "-o", "json").json()["id"]
    rewind(database_url, backend, 1)  # before bob was created
    broken = cli("audit", "verify", "-o", "json")
    assert broken.exit_code == 6
    body = broken.json()
    assert body["users_without_creation"] == [bob] and body["users_without_creation_count"] == 1
    assert "1 user(s) have no creation event" in cli("audit", "verify").error_line


def test_verify_refuses_a_malformed_expected_head(cli):
    run = cli("audit", "verify", "--expect-head", "12:not-a-hash")
    assert run.exit_code == 2 and "SEQ:HASH" in run.error_line
