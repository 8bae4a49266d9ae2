"""`usermgmt users …` behaviour, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import uuid

from conftest import STRONG_PASSWORD

from usermgmt.core.context import RequestContext


def create(cli, email, *args, password=STRONG_PASSWORD):
    run = cli(
        "users", "create", "--email", email, "--password-stdin", "-q", *args, input=password + "\n"
    )
    assert run.exit_code == 0, run.stderr
    return run.stdout.strip()


# ---- create --------------------------------------------------------------------


def test_create_reads_the_password_from_stdin_and_prints_the_user(cli, services, operator):
    run = cli(
        "users",
        "create",
        "--email",
        "Ann@Example.com",
        "--username",
        "ann",
        "--first-name",
        "Ann",
        "--role",
        "admin",
        "--role",
        "moderator",
        "--password-stdin",
        "-o",
        "json",
        input=STRONG_PASSWORD + "\n",
    )
    assert run.exit_code == 0, run.stderr
    user = run.json()
    assert user["email"] == "ann@example.com"
    assert user["roles"] == ["admin", "moderator"]
    assert STRONG_PASSWORD not in run.stdout + run.stderr
    result = services.auth.login(
        RequestContext(), {"email": "ann@example.com", "password": STRONG_PASSWORD}
    )
    assert result.user.id == uuid.UUID(user["id"])


def test_password_stdin_takes_one_line_without_its_line_ending(cli, services):
    uid = create(cli, "crlf@example.com", password=STRONG_PASSWORD + "\r")
    ok = services.auth.login(
        RequestContext(), {"email": "crlf@example.com", "password": STRONG_PASSWORD}
    )
    assert str(ok.user.id) == uid


def test_create_without_a_password_source_off_a_terminal_is_a_usage_error(cli, services, operator):
    run = cli("users", "create", "--email", "x@example.com")
    assert run.exit_code == 2
    assert "--password-stdin or --no-password" in run.error_line
    assert services.user_reads.list(operator).meta.total == 0


def test_create_rejects_a_weak_password_with_exit_2(cli):
    run = cli("users", "create", "--email", "x@example.com", "--password-stdin", input="short\n")
    assert run.exit_code == 2
    assert run.error_line.startswith("error: VALIDATION_ERROR: password:")
    assert "short" not in run.stderr


def test_empty_stdin_is_a_usage_error(cli):
    run = cli("users", "create", "--email", "x@example.com", "--password-stdin", input="")
    assert run.exit_code == 2
    assert "nothing on stdin" in run.error_line


def test_no_password_creates_an_invited_user(cli, services, operator):
    run = cli("users", "create", "--email", "inv@example.com", "--no-password", "-q")
    assert run.exit_code == 0, run.stderr
    uid = run.stdout.strip()
    assert str(uuid.UUID(uid)) == uid
    user = services.user_reads.get(operator, uid)
    assert user.email == "inv@example.com"


def test_password_flags_exclude_each_other(cli):
    run = cli("users", "create", "--email", "x@example.com", "--password-stdin", "--no-password")
    assert run.exit_code == 2


def test_duplicate_email_is_a_conflict(cli):
    create(cli, "dup@example.com")
    run = cli("users", "create", "--email", "DUP@example.com", "--no-password")
    assert run.exit_code == 4
    assert run.error_line == "error: EMAIL_EXISTS: Email is already registered"


def test_errors_follow_json_output(cli):
    run = cli("users", "create", "--email", "not-an-email", "--no-password", "-o", "json")
    assert run.exit_code == 2
    assert run.stdout == ""
    import json

    body = json.loads(run.stderr)
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert "email" in body["error"]["field_errors"]


def test_create_inactive(cli, services, operator):
    uid = create(cli, "off@example.com", "--inactive")
    assert services.user_reads.get(operator, uid).is_active is False


# ---- ensure --------------------------------------------------------------------


def test_ensure_creates_then_leaves_then_updates(cli, services, operator):
    args = ("users", "ensure", "--email", "ci@example.com", "--role", "admin", "--first-name", "CI")
    first = cli(*args)
    assert (first.exit_code, first.stdout) == (0, "created\n"), first.stderr
    again = cli(*args)
    assert (again.exit_code, again.stdout) == (0, "unchanged\n")
    changed = cli("users", "ensure", "--email", "ci@example.com", "--last-name", "Bot")
    assert (changed.exit_code, changed.stdout) == (0, "updated\n")
    user = services.user_reads.find(operator, "ci@example.com")
    # Only the given field changed: the first name and roles stayed.
    assert (user.first_name, user.last_name, user.roles) == ("CI", "Bot", ["admin"])


def test_ensure_sets_the_password_only_when_it_differs(cli, services):
    args = ("users", "ensure", "--email", "pw@example.com", "--password-stdin")
    assert cli(*args, input=STRONG_PASSWORD + "\n").stdout == "created\n"
    assert cli(*args, input=STRONG_PASSWORD + "\n").stdout == "unchanged\n"
    assert cli(*args, input="An0ther-Passw0rd\n").stdout == "updated\n"
    ok = services.auth.login(
        RequestContext(), {"email": "pw@example.com", "password": "An0ther-Passw0rd"}
    )
    assert ok.user.email == "pw@example.com"


def test_ensure_json_carries_the_outcome(cli):
    run = cli("users", "ensure", "--email", "j@example.com", "-o", "json")
    assert run.exit_code == 0
    body = run.json()
    assert body["outcome"] == "created" and body["email"] == "j@example.com"


# ---- list and show -----------------------------------------------------------


def test_list_formats(cli, seed):
    seed(3)
    table = cli("users", "list")
    assert table.exit_code == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "EMAIL",
        "USERNAME",
        "KIND",
        "NAME",
        "ROLES",
        "MFA",
        "STATUS",
        "CREATED",
    ]
    assert all(line == line.rstrip() for line in lines)  # no trailing blanks off a terminal
    assert "\x1b[" not in table.stdout  # no colour off a terminal

    as_json = cli("users", "list", "-o", "json").json()
    assert isinstance(as_json, list) and len(as_json) == 3
    assert {u["email"] for u in as_json} == {f"user{i}@example.com" for i in range(3)}

    as_jsonl = cli("users", "list", "-o", "jsonl").jsonl()
    assert [u["id"] for u in as_jsonl] == [u["id"] for u in as_json]

    rows = list(csv.DictReader(io.StringIO(cli("users", "list", "-o", "csv").stdout)))
    assert len(rows) == 3
    assert rows[0]["roles"] == "user" and rows[0]["is_active"] == "true"
    assert rows[0]["profile.timezone"] == "UTC"

    quiet = cli("users", "list", "-q").stdout.split()
    assert quiet == [u["id"] for u in as_json]


def test_list_limit_all_and_paging_past_one_page(cli, seed):
    seed(130)
    assert len(cli("users", "list", "-q").stdout.split()) == 20
    limited = cli("users", "list", "--limit", "120", "--sort", "email", "-o", "jsonl").jsonl()
    assert len(limited) == 120
    emails = [u["email"] for u in limited]
    assert emails == sorted(emails) and len(set(emails)) == 120
    everyone = cli("users", "list", "--all", "-q").stdout.split()
    assert len(everyone) == len(set(everyone)) == 130
    table = cli("users", "list", "--limit", "5")
    assert "Showing 5 of 130 users" in table.stdout
    assert cli("users", "list", "--all", "--limit", "5").exit_code == 2


def test_list_filters_and_bad_sort(cli, seed):
    seed(2)
    uid = create(cli, "ann@example.com", "--role", "admin", "--first-name", "Annabel")
    assert cli("users", "list", "--search", "annab", "-q").stdout.split() == [uid]
    assert cli("users", "list", "--role", "admin", "-q").stdout.split() == [uid]
    assert cli("users", "list", "--status", "bogus").exit_code == 2
    bad = cli("users", "list", "--sort", "password_hash")
    assert bad.exit_code == 2 and "sort" in bad.error_line


def test_empty_list(cli):
    assert cli("users", "list").stdout == "No users found.\n"
    assert cli("users", "list", "-o", "json").json() == []
    assert cli("users", "list", "-o", "csv").stdout.startswith("id,email,")


def test_show_by_uuid_email_or_username(cli):
    uid = create(cli, "show@example.com", "--username", "shown")
    for ref in (uid, "SHOW@example.com", "shown"):
        run = cli("users", "show", ref, "-o", "json")
        assert run.exit_code == 0 and run.json()["id"] == uid
    table = cli("users", "show", "shown").stdout
    assert "email" in table and "show@example.com" in table


def test_show_unknown_is_not_found(cli):
    run = cli("users", "show", "nobody@example.com")
    assert run.exit_code == 3
    assert run.error_line == "error: NOT_FOUND: No user 'nobody@example.com'"


# ---- change --------------------------------------------------------------------


def test_update_changes_only_the_given_fields(cli, services, operator):
    uid = create(cli, "up@example.com", "--first-name", "Up")
    run = cli(
        "users", "update", "up@example.com", "--last-name", "Date", "--inactive", "-o", "json"
    )
    assert run.exit_code == 0, run.stderr
    user = run.json()
    assert (user["first_name"], user["last_name"], user["is_active"]) == ("Up", "Date", False)
    assert cli("users", "update", uid).exit_code == 2  # nothing to change
    assert services.user_reads.get(operator, uid).last_name == "Date"


def test_delete_restore(cli, services, operator):
    uid = create(cli, "del@example.com")
    run = cli("users", "delete", "del@example.com")  # stdin is not a terminal: no question
    assert run.exit_code == 0, run.stderr
    assert cli("users", "show", uid).exit_code == 3
    assert cli("users", "show", uid, "--include-deleted").exit_code == 0
    restored = cli("users", "restore", "del@example.com", "-q")
    assert (restored.exit_code, restored.stdout.strip()) == (0, uid)
    assert cli("users", "restore", uid).exit_code == 4  # not deleted


def test_last_admin_cannot_be_deleted_or_locked(cli):
    create(cli, "root@example.com", "--role", "admin")
    assert cli("users", "delete", "root@example.com", "--yes").exit_code == 4
    assert cli("users", "lock", "root@example.com").exit_code == 4


def test_lock_unlock(cli):
    uid = create(cli, "lock@example.com")
    locked = cli("users", "lock", uid, "--minutes", "30", "-o", "json").json()
    assert locked["locked_until"] is not None
    assert cli("users", "list", "--status", "locked", "-q").stdout.split() == [uid]
    assert "locked" in cli("users", "list").stdout
    assert cli("users", "unlock", uid, "-o", "json").json()["locked_until"] is None
    assert cli("users", "lock", uid, "--minutes", "0").exit_code == 2


def test_set_password(cli, services):
    create(cli, "sp@example.com")
    run = cli(
        "users", "set-password", "sp@example.com", "--password-stdin", input="Brand-N3w-Secret\n"
    )
    assert run.exit_code == 0, run.stderr
    assert "Brand-N3w-Secret" not in run.stdout + run.stderr
    ok = services.auth.login(
        RequestContext(), {"email": "sp@example.com", "password": "Brand-N3w-Secret"}
    )
    assert ok.user.email == "sp@example.com"
    assert cli("users", "set-password", "sp@example.com").exit_code == 2  # no terminal
    assert (
        cli(
            "users",
            "set-password",
            "nobody@example.com",
            "--password-stdin",
            input="Brand-N3w-Secret\n",
        ).exit_code
        == 3
    )


def test_changes_are_audited_as_the_cli_operator(cli, services, operator):
    import getpass

    uid = create(cli, "aud@example.com")
    events = services.audit.query(operator, {"target_id": uid}).data
    assert events[0].action == "user.created"
    assert events[0].actor_label == f"cli:{getpass.getuser()}"
    assert STRONG_PASSWORD not in str(events[0].changes)
