"""roles, sessions, audit, tokens, db and info, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from conftest import STRONG_PASSWORD
from sqlalchemy import create_engine, text

from usermgmt.core.context import RequestContext


@pytest.fixture
def ann(services, operator, ctx):
    return services.users.create(
        operator, ctx, {"email": "ann@example.com", "username": "ann", "password": STRONG_PASSWORD}
    )


def login(services, email="ann@example.com"):
    return services.auth.login(
        RequestContext(ip="10.0.0.1", user_agent="pytest"),
        {"email": email, "password": STRONG_PASSWORD},
    )


# ---- roles ---------------------------------------------------------------------


def test_roles_list_grant_revoke(cli, ann):
    names = cli("roles", "list", "-q").stdout.split()
    assert names == ["admin", "moderator", "user"]
    listed = cli("roles", "list", "-o", "json").json()
    assert {r["name"] for r in listed} == set(names) and all(r["description"] for r in listed)

    granted = cli("roles", "grant", "ann", "moderator", "-o", "json")
    assert granted.exit_code == 0 and granted.json()["roles"] == ["moderator", "user"]
    again = cli("roles", "grant", "ann@example.com", "moderator", "-o", "json")
    assert again.json()["roles"] == ["moderator", "user"]  # idempotent
    revoked = cli("roles", "revoke", str(ann.id), "moderator", "-o", "json")
    assert revoked.json()["roles"] == ["user"]
    bad = cli("roles", "grant", "ann", "wizard")
    assert bad.exit_code == 2 and "Unknown role" in bad.error_line
    assert cli("roles", "grant", "nobody", "admin").exit_code == 3


# ---- sessions ----------------------------------------------------------------------


def test_sessions_list_and_revoke(cli, services, ann):
    first = login(services)
    login(services)
    listed = cli("sessions", "list", "ann", "-o", "json").json()
    assert len(listed) == 2 and listed[0]["ip"] == "10.0.0.1"
    table = cli("sessions", "list", "ann").stdout
    assert "USER AGENT" in table and "pytest" in table

    session_id = listed[0]["id"]
    assert cli("sessions", "revoke", session_id).exit_code == 0
    assert len(cli("sessions", "list", "ann", "-q").stdout.split()) == 1

    assert cli("sessions", "revoke", "ann@example.com", "--all").exit_code == 0
    assert cli("sessions", "list", "ann").stdout == "No live sessions.\n"
    assert first.tokens.refresh_token not in table
    assert cli("sessions", "revoke", "00000000-0000-0000-0000-000000000000").exit_code == 3


# ---- audit ---------------------------------------------------------------------------


def test_audit_list_filters(cli, services, ann):
    cli("users", "update", "ann", "--first-name", "Annie")
    events = cli("audit", "list", "--target", "ann", "-o", "jsonl").jsonl()
    assert [e["action"] for e in events] == ["user.updated", "user.created"]  # newest first
    assert cli("audit", "list", "--action", "user.up*", "-q").stdout.split() == [events[0]["id"]]
    assert cli("audit", "list", "--since", "1h", "-q").stdout.split() == [e["id"] for e in events]
    assert cli("audit", "list", "--until", "2000-01-01", "-o", "json").json() == []
    assert cli("audit", "list", "--since", "yesterday").exit_code == 2
    # Ages that leave the calendar are bad values too, not unexpected errors.
    for value in ("99999999999d", "\u0663d"):
        out_of_range = cli("audit", "list", "--since", value)
        assert out_of_range.exit_code == 2, out_of_range.stderr
        assert "--since" in out_of_range.error_line or "since" in out_of_range.error_line
    # A valid time past the calendar once in UTC bounds nothing (as in the API).
    assert cli("audit", "list", "--since", "9999-12-31T23:59:59-14:00", "-o", "json").json() == []
    assert cli("audit", "list", "--actor", "nobody@example.com").exit_code == 3
    assert "user.updated" in cli("audit", "list").stdout
    label = events[0]["actor_label"]  # the operator, cli:<os user>, has no user id
    assert label.startswith("cli:") and events[0]["actor_id"] is None
    by_label = cli("audit", "list", "--actor", label, "--target", "ann", "-q").stdout.split()
    assert by_label == [events[0]["id"]]  # ann was created through the core, not the CLI
    assert cli("audit", "list", "--actor", "cli:nobody", "-o", "json").json() == []


def test_audit_list_pages_past_the_core_limit(cli, seed):
    seed(1200)  # one event per imported user
    assert len(cli("audit", "list", "--limit", "1100", "-q").stdout.split()) == 1100


def test_audit_verify_intact_and_broken(cli, ann, database_url, backend):
    ok = cli("audit", "verify")
    head = cli("audit", "head").stdout.strip()
    assert (ok.exit_code, ok.stdout) == (0, f"Audit chain intact: 1 events checked; head {head}.\n")
    assert cli("audit", "verify", "-o", "json").json()["ok"] is True

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if backend == "postgres":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        conn.execute(text("UPDATE audit_events SET action = 'user.forged' WHERE seq = 1"))
    engine.dispose()
    broken = cli("audit", "verify")
    assert broken.exit_code == 6
    assert broken.error_line.startswith("error: AUDIT_CHAIN_BROKEN: Audit chain broken at event #1")
    assert "content does not match its hash" in broken.error_line
    as_json = cli("audit", "verify", "-o", "json")
    assert as_json.exit_code == 6 and as_json.json()["bad_seq"] == 1


# ---- tokens ----------------------------------------------------------------------------


def test_tokens_purge_dry_run_then_real(cli, services, operator, ctx, ann):
    services.users.send_reset_link(operator, ctx, str(ann.id))
    services.users.send_reset_link(operator, ctx, str(ann.id))  # voids the first link
    dry = cli("tokens", "purge", "--dry-run", "-o", "json")
    assert dry.exit_code == 0
    counts = {r["kind"]: r["count"] for r in dry.json()}
    assert counts["one_time_tokens"] == 1 and all(r["dry_run"] for r in dry.json())
    assert "WOULD DELETE" in cli("tokens", "purge", "--dry-run").stdout

    real = cli("tokens", "purge")
    assert real.exit_code == 0 and "DELETED" in real.stdout
    again = cli("tokens", "purge", "-o", "json").json()
    assert {r["kind"]: r["count"] for r in again}["one_time_tokens"] == 0
    actions = cli("audit", "list", "--action", "maintenance.purged", "-o", "json").json()
    assert len(actions) == 1 and actions[0]["changes"]["one_time_tokens"] == 1


# ---- db ----------------------------------------------------------------------------------


def test_db_current_check_downgrade_upgrade(cli):
    current = cli("db", "current", "-o", "json").json()
    assert current["up_to_date"] is True and current["current"] == current["head"]
    assert cli("db", "check").exit_code == 0

    down = cli("db", "downgrade", "base", "--yes")  # not a terminal: would not ask anyway
    assert down.exit_code == 0, down.stderr
    check = cli("db", "check")
    assert check.exit_code == 5
    assert "run `usermgmt db upgrade`" in check.error_line
    behind = cli("users", "list")
    assert behind.exit_code == 5 and "usermgmt db upgrade" in behind.error_line
    assert cli("db", "current").stdout.startswith("empty (no schema)")

    up = cli("db", "upgrade", "-o", "json")
    assert up.exit_code == 0 and up.json()["before"] is None and up.json()["up_to_date"]
    assert cli("db", "check").exit_code == 0
    assert cli("users", "list").exit_code == 0
    assert cli("db", "upgrade", "no-such-revision").exit_code == 2


def test_a_fresh_sqlite_file_is_created_and_migrated_on_first_use(cli_at, tmp_path):
    url = f"sqlite:///{tmp_path / 'deep' / 'dir' / 'new.db'}"
    assert cli_at(url, "users", "list").exit_code == 0
    assert cli_at(url, "db", "check").exit_code == 0


# ---- info --------------------------------------------------------------------------------


def test_info_shows_the_database_and_where_settings_come_from(cli, database_url, monkeypatch):
    monkeypatch.setenv("USERMGMT_JWT_SECRET", "s" * 40)
    run = cli("info", "-o", "json")
    assert run.exit_code == 0, run.stderr
    info = run.json()
    assert info["database"]["reachable"] and info["database"]["up_to_date"]
    settings = {s["name"]: s for s in info["settings"]}
    assert settings["USERMGMT_DATABASE_URL"]["source"] == "command line"
    assert settings["USERMGMT_BCRYPT_ROUNDS"]["source"] == "environment (USERMGMT_BCRYPT_ROUNDS)"
    assert settings["USERMGMT_JWT_SECRET"]["value"] == "(set, hidden)"
    assert "s" * 40 not in run.stdout
    table = cli("info").stdout
    assert table.startswith("usermgmt ") and "schema:" in table and "(head)" in table


def test_info_masks_the_password_and_exits_5_when_unreachable(cli_at):
    url = "postgresql+psycopg://admin:hunter22@127.0.0.1:9/users"
    run = cli_at(url, "info", "-o", "json")
    assert run.exit_code == 5
    assert "hunter22" not in run.stdout + run.stderr
    assert (
        json.loads(run.stdout)["database"]["url"]
        == "postgresql+psycopg://admin:***@127.0.0.1:9/users"
    )
    assert json.loads(run.stderr)["error"]["code"] == "SERVICE_UNAVAILABLE"
