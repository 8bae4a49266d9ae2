"""The operator's CLI (issue 21) in both modes, embedded and through a live server:
short ids and id prefixes, several users at once, --fields, --follow."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable

from usermgmt.core.context import Actor, RequestContext

from .conftest import clean_env, unique_email


class PrefixedIds:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def new_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.prefix + uuid.uuid4().hex[8:])


def make_users(served, n: int, prefix: str | None = None) -> list[str]:
    """``n`` users made straight in the server's database, their ids sharing ``prefix``."""
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    ids = PrefixedIds(prefix) if prefix else None
    svc = build_services(load_settings(database_url=served.database_url), ids=ids)
    try:
        operator, ctx = Actor.operator("cli", "tester"), RequestContext(request_id="ops")
        made = [svc.users.create(operator, ctx, {"email": unique_email()}) for _ in range(n)]
        return [str(u.id) for u in made]
    finally:
        svc.close()


def test_tables_show_short_ids_and_wide_shows_them_whole(run, served):
    [uid] = make_users(served, 1)
    table = run("users", "show", uid, "-o", "table")
    assert table.exit_code == 0
    listed = run("users", "list", "--limit", "100", "--sort", "-created_at")
    assert uid[:8] in listed.stdout and uid not in listed.stdout
    wide = run("users", "list", "--limit", "100", "-o", "wide")
    assert uid in wide.stdout


def test_a_unique_id_prefix_is_accepted_where_an_id_is(run, served):
    [uid] = make_users(served, 1, prefix=uuid.uuid4().hex[:8])
    shown = run("users", "show", uid[:8], "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.json()["id"] == uid
    locked = run("users", "lock", uid[:8], "-q")
    assert (locked.exit_code, locked.stdout) == (0, uid + "\n")
    assert run("users", "unlock", uid[:12], "-q").stdout == uid + "\n"


def test_an_ambiguous_prefix_is_a_usage_error_naming_the_candidates(run, served):
    prefix = uuid.uuid4().hex[:8]
    ids = make_users(served, 2, prefix=prefix)
    result = run("users", "lock", prefix)
    assert result.exit_code == 2
    assert all(uid in result.error_line for uid in ids), result.error_line


# ---- several at once -------------------------------------------------------------


def test_lock_several_then_unlock_them_from_stdin(run, served):
    ids = make_users(served, 3)
    locked = run("users", "lock", *ids, "-o", "json")
    assert locked.exit_code == 0, locked.stderr
    assert [u["id"] for u in locked.json()] == ids
    assert {u["status"] for u in locked.json()} == {"locked"}
    unlocked = run("users", "unlock", "-", "-q", input="\n".join(ids) + "\n\n")
    assert (unlocked.exit_code, unlocked.stdout.split()) == (0, ids)
    shown = [run("users", "show", uid, "-o", "json").json()["status"] for uid in ids]
    assert "locked" not in shown


def test_one_failure_is_named_the_rest_done_and_the_exit_is_its_code(run, served):
    ids = make_users(served, 2)
    missing = "nobody-" + uuid.uuid4().hex[:6]
    result = run("users", "lock", ids[0], missing, ids[1], "-q")
    assert result.exit_code == 3
    assert result.stdout.split() == ids
    errors = result.stderr.strip().splitlines()
    assert missing in errors[0] and errors[0].startswith("error: NOT_FOUND:")
    assert errors[-1] == "error: SOME_FAILED: locked 2 of 3 users; 1 failed (each named above)"


def test_delete_several_and_ignore_missing(run, served):
    ids = make_users(served, 2)
    missing = str(uuid.uuid4())
    failed = run("users", "delete", *ids, missing, "--yes")
    assert failed.exit_code == 3 and "deleted 2 of 3 users" in failed.error_line
    again = run("users", "delete", *ids, missing, "--yes", "--ignore-missing")
    assert again.exit_code == 0, again.stderr
    one = run("users", "delete", missing, "--ignore-missing", "--yes")
    assert (one.exit_code, one.stderr) == (0, "")
    assert run("users", "delete", missing, "--yes").exit_code == 3
    restored = run("users", "restore", *ids, "-q")
    assert (restored.exit_code, restored.stdout.split()) == (0, ids)


def test_roles_and_sessions_take_several_users(run, served):
    ids = make_users(served, 2)
    granted = run("roles", "grant", *ids, "moderator", "-o", "jsonl")
    assert granted.exit_code == 0, granted.stderr
    assert all("moderator" in u["roles"] for u in granted.jsonl())
    revoked = run("roles", "revoke", "-", "moderator", "-q", input="\n".join(ids))
    assert (revoked.exit_code, revoked.stdout.split()) == (0, ids)
    signed_out = run("sessions", "revoke", "--all", *ids)
    assert (signed_out.exit_code, signed_out.stderr) == (0, "")


# ---- --fields, status ------------------------------------------------------------


def test_fields_choose_columns_and_keys_in_every_format(run, served):
    [uid] = make_users(served, 1)
    args = ("users", "list", "--search", run("users", "show", uid, "-o", "json").json()["email"])
    as_json = run(*args, "--fields", "email,status,id", "-o", "json")
    assert as_json.exit_code == 0, as_json.stderr
    [record] = as_json.json()
    assert list(record) == ["email", "status", "id"] and record["id"] == uid
    [line] = run(*args, "--fields", "id,profile.timezone", "-o", "jsonl").jsonl()
    assert line == {"id": uid, "profile.timezone": "UTC"}
    csv = run(*args, "--fields", "id,status", "-o", "csv").stdout.splitlines()
    assert csv == ["id,status", f"{uid},unverified"]
    header, _rule, row = run(*args, "--fields", "status,id").stdout.splitlines()
    assert header.split() == ["STATUS", "ID"] and row.split() == ["unverified", uid[:8]]


def test_an_unknown_field_is_a_usage_error_naming_the_valid_ones(run):
    result = run("audit", "list", "--fields", "seq,nope", "-o", "json")
    assert result.exit_code == 2
    assert "unknown field nope" in result.error_line and "actor_label" in result.error_line
    assert run("roles", "list", "--fields", "name", "-q").exit_code == 0


# ---- audit list --follow -----------------------------------------------------------


def line_reader(process: subprocess.Popen) -> Callable[[], str]:
    """``next_line()``: the next line the process prints (its timeout only catches a hang).

    A thread reads them, since one read may bring several lines at once.
    """
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()

    def next_line() -> str:
        return lines.get(timeout=60)

    return next_line


def test_follow_prints_new_events_until_ctrl_c(mode, run, served):
    [uid] = make_users(served, 1)
    where = ["--database-url", served.database_url] if mode == "embedded" else []
    env = clean_env(**{k: v for k, v in os.environ.items() if k == "XDG_CONFIG_HOME"})
    process = subprocess.Popen(
        [sys.executable, "-m", "usermgmt", *where, "audit", "list", "--target", uid,
         "--follow", "--interval", "0.2", "-o", "jsonl", "--fields", "seq,action"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    read_line = line_reader(process)
    try:
        first = json.loads(read_line())
        assert first["action"] == "user.created"
        assert run("users", "lock", uid, "-q").exit_code == 0
        assert run("users", "unlock", uid, "-q").exit_code == 0
        locked, unlocked = json.loads(read_line()), json.loads(read_line())
        assert [locked["action"], unlocked["action"]] == ["user.locked", "user.unlocked"]
        assert first["seq"] < locked["seq"] < unlocked["seq"]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_follow_refuses_until_and_one_json_document(run):
    assert run("audit", "list", "--follow", "--until", "1h").exit_code == 2
    refused = run("audit", "list", "--follow", "-o", "json")
    assert refused.exit_code == 2 and "jsonl" in refused.error_line
