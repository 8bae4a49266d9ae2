"""The same commands, output and exit codes embedded and remote (against a live server)."""

from __future__ import annotations

import uuid

import pytest

from .conftest import PASSWORD, unique_email

# ---- the same output, byte for byte -------------------------------------------


@pytest.mark.parametrize("output", ["table", "json", "jsonl", "csv"])
def test_users_list_prints_the_same_in_every_format(embedded, as_admin, output):
    args = ("users", "list", "--limit", "30", "--sort", "email", "-o", output)
    local, remote = embedded(*args), as_admin(*args)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)
    assert remote.exit_code == 0


def test_users_list_walks_pages_the_same(embedded, as_admin):
    for _ in range(3):
        assert embedded("users", "create", "--email", unique_email(), "--no-password", "-q")
    args = ("users", "list", "--all", "--sort", "email", "-q")
    local, remote = embedded(*args), as_admin(*args)
    assert remote.stdout == local.stdout and remote.exit_code == 0
    limited = ("users", "list", "--limit", "2", "--sort", "email", "-o", "json")
    assert as_admin(*limited).stdout == embedded(*limited).stdout


@pytest.mark.parametrize(
    "args",
    [
        ("roles", "list", "-o", "json"),
        ("roles", "list"),
        ("audit", "list", "--limit", "5", "-o", "jsonl"),
        ("audit", "list", "--action", "user.*", "--since", "1d", "--limit", "3", "-o", "csv"),
        ("users", "list", "--role", "admin", "-q"),
        ("users", "list", "--status", "unverified", "--limit", "3", "-o", "csv"),
    ],
    ids=" ".join,
)
def test_reads_print_the_same(embedded, as_admin, args):
    local, remote = embedded(*args), as_admin(*args)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)


def test_show_by_id_prints_the_same(served, embedded, as_admin):
    for output in ("json", "table", "csv"):
        args = ("users", "show", served.admin_id, "-o", output)
        assert as_admin(*args).stdout == embedded(*args).stdout


# ---- the same behaviour, written once, run in both modes ------------------------


def test_create_lock_unlock_and_roles(run):
    email = unique_email()
    created = run("users", "create", "--email", email, "--password-stdin", "-o", "json",
                  input=PASSWORD + "\n")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    uid = created.json()["id"]
    locked = run("users", "lock", uid, "--minutes", "5", "-o", "json")
    assert locked.exit_code == 0 and locked.json()["status"] == "locked"
    assert run("users", "unlock", uid, "-q").stdout.strip() == uid
    granted = run("roles", "grant", uid, "moderator", "-o", "json").json()
    assert sorted(granted["roles"]) == ["moderator", "user"]
    assert run("roles", "grant", uid, "moderator", "-o", "json").json() == granted
    assert run("roles", "revoke", uid, "moderator", "-o", "json").json()["roles"] == ["user"]
    updated = run("users", "update", uid, "--first-name", "Ann", "--inactive", "-o", "json")
    assert updated.json()["first_name"] == "Ann" and updated.json()["is_active"] is False
    assert run("users", "delete", uid, "--yes").exit_code == 0
    assert run("users", "show", uid).exit_code == 3
    assert run("users", "restore", uid, "-o", "json").json()["deleted_at"] is None


@pytest.mark.parametrize(
    "args, code, error",
    [
        (("users", "show", str(uuid.UUID(int=7))), 3, "NOT_FOUND"),
        (("users", "lock", str(uuid.UUID(int=7))), 3, "NOT_FOUND"),
        (("users", "create", "--email", "not-an-email", "--no-password"), 2, "VALIDATION_ERROR"),
        (("users", "create", "--email", "root@example.com", "--no-password"), 4, "EMAIL_EXISTS"),
        (("users", "list", "--sort", "nope"), 2, "VALIDATION_ERROR"),
        (("roles", "grant", str(uuid.UUID(int=7)), "admin"), 3, "NOT_FOUND"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v),
)
def test_errors_have_the_same_code_and_exit(run, args, code, error):
    result = run(*args)
    assert result.exit_code == code, result.stderr
    assert result.error_line.startswith(f"error: {error}: ")


def test_the_last_admin_keeps_the_role_and_a_person_their_own(embedded, as_admin, served):
    assert embedded("roles", "revoke", served.admin_id, "admin").exit_code == 4
    # Remotely the admin is a person, held to the matrix: never one's own roles.
    own = as_admin("roles", "revoke", served.admin_id, "admin")
    assert own.exit_code == 7
    assert "own roles" in own.error_line and "root@example.com" in own.error_line


def test_json_errors_keep_the_api_shape(run):
    result = run("users", "show", str(uuid.UUID(int=9)), "-o", "json")
    assert result.exit_code == 3
    import json

    assert json.loads(result.error_line)["error"]["code"] == "NOT_FOUND"


def test_sessions_list_and_revoke_all(run, served):
    email = unique_email()
    uid = run("users", "create", "--email", email, "--password-stdin", "-q",
              input=PASSWORD + "\n").stdout.strip()  # fmt: skip
    from .conftest import invoke, login

    login(served, email, "other")  # a live session of that user (and the current context)
    invoke("context", "use", "admin")
    listed = run("sessions", "list", uid, "-o", "json")
    assert listed.exit_code == 0 and len(listed.json()) == 1
    assert run("sessions", "revoke", uid, "--all").exit_code == 0
    assert run("sessions", "list", uid, "-o", "json").json() == []
    assert invoke("--context", "other", "users", "list").exit_code == 7


# ---- what needs the endpoints of the remote-mode API branch ---------------------


@pytest.mark.parametrize("ref", ["root@example.com", "root"])
def test_show_by_email_or_username(embedded, as_admin, ref):
    args = ("users", "show", ref, "-o", "json")
    assert as_admin(*args).stdout == embedded(*args).stdout


def test_ensure_prints_created_then_unchanged(run):
    email = unique_email()
    first = run("users", "ensure", "--email", email, "--first-name", "Ed")
    assert (first.exit_code, first.stdout.strip()) == (0, "created")
    assert run("users", "ensure", "--email", email, "--first-name", "Ed").stdout.strip() == (
        "unchanged"
    )
    assert run("users", "ensure", "--email", email, "--first-name", "Al").stdout.strip() == (
        "updated"
    )


def test_import_then_export(run, tmp_path):
    emails = [unique_email("imp") for _ in range(3)]
    source = tmp_path / "in.csv"
    source.write_text("email,first_name\n" + "".join(f"{e},Imp\n" for e in emails))
    imported = run("users", "import", str(source), "-o", "json")
    assert imported.exit_code == 0, imported.stderr
    assert imported.json()["created"] == 3
    bad = tmp_path / "bad.csv"
    bad.write_text(f"email\n{unique_email()}\nnot-an-email\n")
    refused = run("users", "import", str(bad), "-o", "json")
    assert refused.exit_code == 2
    assert [e["line"] for e in refused.json()["errors"]] == [3]
    exported = run("users", "export", "--format", "jsonl").jsonl()
    assert set(emails) <= {r["email"] for r in exported}


def test_audit_verify_purge_and_mail(run):
    assert run("audit", "verify").exit_code == 0
    assert run("tokens", "purge", "--dry-run", "-o", "json").exit_code == 0
    assert run("mail", "list", "-o", "json").exit_code == 0
    assert run("mail", "deliver", "-o", "json").exit_code == 0
    assert run("mail", "retry", str(uuid.UUID(int=5))).exit_code == 3


def test_mail_list_and_audit_by_person_print_the_same(embedded, as_admin, served):
    embedded("users", "create", "--email", unique_email("mail"), "--no-password", "-q")
    # (ids only: the server delivers mail meanwhile, so a status may change between runs)
    for args in (
        ("mail", "list", "--limit", "3", "-q"),
        ("audit", "list", "--actor", "root@example.com", "--limit", "3", "-o", "json"),
        ("audit", "list", "--target", "root", "-o", "jsonl"),
    ):
        local, remote = embedded(*args), as_admin(*args)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), args


@pytest.mark.parametrize("on_conflict", ["fail", "skip"])
def test_an_import_with_unparsable_rows_reports_the_same(embedded, as_admin, tmp_path, on_conflict):
    source = tmp_path / "mixed.jsonl"
    good = [unique_email("mix") for _ in range(2)]
    source.write_text(
        f'{{"email": "{good[0]}"}}\n{{"email": oops}}\n{{"email": "not-an-email"}}\n'
        f'{{"email": "{good[1]}"}}\n'
    )
    args = ("users", "import", str(source), "--on-conflict", on_conflict, "--dry-run", "-o", "json")
    local, remote = embedded(*args), as_admin(*args)
    assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout)
    assert [e["line"] for e in remote.json()["errors"]] == [2, 3]
    real = ("users", "import", str(source), "--on-conflict", on_conflict, "-o", "json")
    written = as_admin(*real)
    assert written.exit_code == 2
    if on_conflict == "fail":  # nothing was written: embedded reports the same
        assert written.json()["committed"] is False
        assert written.stdout == embedded(*real).stdout
    else:
        assert written.json()["committed"] is True and written.json()["created"] == 2
        shown = as_admin("users", "show", good[1], "-q")
        assert shown.exit_code == 0


def test_service_account_keys_create_list_revoke(run):
    name = f"svc-{uuid.uuid4().hex[:8]}"
    made = run("users", "create", "--service", "--username", name, "--email",
               f"{name}@example.com", "-o", "json")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    assert made.json()["kind"] == "service"
    created = run("keys", "create", "--name", "cron", "--scope", "maintenance", "--user", name,
                  "-o", "json")  # fmt: skip
    assert created.exit_code == 0, created.stderr
    key, secret = created.json()["key"], created.json()["secret"]
    assert secret.startswith("umk_") and key["scopes"] == ["maintenance"]
    listed = run("keys", "list", "--user", name, "-o", "json")
    assert [k["id"] for k in listed.json()] == [key["id"]]
    assert secret not in listed.stdout
    assert run("keys", "revoke", key["id"]).exit_code == 0
    assert run("keys", "list", "--user", name, "-o", "json").json()[0]["state"] == "revoked"
    assert run("keys", "revoke", str(uuid.UUID(int=7))).exit_code == 3
