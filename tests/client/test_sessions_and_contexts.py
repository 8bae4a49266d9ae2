"""Remote mode's sessions, contexts and transport rules, against a live server."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from api.api_helpers import free_port

from usermgmt.core.clock import SYSTEM_CLOCK
from usermgmt.core.secrets import encode_access_token

from .conftest import JWT_SECRET, PASSWORD, clean_env, invoke, login, unique_email


def contexts_file(config_home):
    return config_home / "usermgmt" / "contexts.json"


def stored(config_home, name="admin") -> dict:
    return json.loads(contexts_file(config_home).read_text())["contexts"][name]


def expire_access_token(config_home, name="admin") -> str:
    """Replace the context's access token by an expired one of the same session."""
    path = contexts_file(config_home)
    data = json.loads(path.read_text())
    claims = jwt.decode(data["contexts"][name]["access_token"], options={"verify_signature": False})
    expired = encode_access_token(
        JWT_SECRET.encode(),
        uuid.UUID(claims["sub"]),
        uuid.UUID(claims["sid"]),
        ttl=30,
        now=SYSTEM_CLOCK.now() - timedelta(hours=1),
    )
    data["contexts"][name]["access_token"] = expired
    path.write_text(json.dumps(data))
    return expired


def run_process(*args: str, config_home, env=None, input=None):
    return subprocess.run(
        [sys.executable, "-m", "usermgmt", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
        env=clean_env(XDG_CONFIG_HOME=str(config_home), **(env or {})),
    )


# ---- login, the contexts file, secrets ------------------------------------------


def test_login_stores_a_private_context_and_never_prints_a_token(as_admin, config_home):
    path = contexts_file(config_home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    context = stored(config_home)
    secrets = [context["access_token"], context["refresh_token"]]
    assert all(secrets)
    outputs = [
        as_admin("context", "list"),
        as_admin("context", "list", "-o", "json"),
        as_admin("context", "show"),
        as_admin("context", "show", "admin", "-o", "csv"),
        as_admin("--debug", "users", "list", "--limit", "2", "-o", "json"),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.stderr
        for secret in secrets:
            assert secret not in result.stdout and secret not in result.stderr
    shown = as_admin("context", "show", "-o", "json").json()
    assert shown["user"] == "root@example.com" and shown["logged_in"] is True
    assert shown["current"] is True and "access_token" not in shown


def test_wrong_password_is_exit_7_and_stores_nothing(served, config_home):
    result = invoke(
        "login", "--server", served.url, "--email", served.admin_email, "--password-stdin",
        input="Wrong-password-1\n",
    )  # fmt: skip
    assert result.exit_code == 7
    assert result.error_line.startswith("error: INVALID_CREDENTIALS: ")
    assert not contexts_file(config_home).exists()


def test_login_without_a_terminal_needs_password_stdin(served, config_home):
    result = invoke("login", "--server", served.url, "--email", served.admin_email)
    assert result.exit_code == 2 and "--password-stdin" in result.error_line


@pytest.mark.parametrize(
    "server", ["http://users.example.com", "http://10.1.2.3:8000", "ftp://127.0.0.1"]
)
def test_plain_http_is_refused_beyond_loopback(config_home, server):
    result = invoke(
        "login", "--server", server, "--email", "a@example.com", "--password-stdin", input="x\n"
    )
    assert result.exit_code == 2, result.stderr
    assert "server" in result.error_line
    assert not contexts_file(config_home).exists()


def test_plain_http_from_the_environment_is_refused_too(config_home, monkeypatch):
    monkeypatch.setenv("USERMGMT_SERVER", "http://users.example.com")
    monkeypatch.setenv("USERMGMT_TOKEN", "umk_not-sent")
    result = invoke("users", "list")
    assert result.exit_code == 2 and "http://" in result.error_line


def test_insecure_says_so_on_stderr_every_call(config_home):
    port = free_port()  # nothing listens: the call fails after the warning
    result = invoke(
        "login", "--server", f"https://127.0.0.1:{port}", "--insecure", "--email",
        "a@example.com", "--password-stdin", input="Whatever-pass-1\n",
    )  # fmt: skip
    assert "TLS certificate verification is OFF" in result.stderr
    assert result.exit_code == 5


# ---- the session: refresh, revocation, logout -----------------------------------


def test_an_expired_access_token_is_refreshed_and_the_command_carries_on(as_admin, config_home):
    before = stored(config_home)
    expired = expire_access_token(config_home)
    result = as_admin("users", "list", "--limit", "1", "-q")
    assert result.exit_code == 0, result.stderr
    after = stored(config_home)
    assert after["access_token"] not in (expired, before["access_token"])
    assert after["refresh_token"] != before["refresh_token"]  # rotated, and kept
    assert stat.S_IMODE(contexts_file(config_home).stat().st_mode) == 0o600
    assert as_admin("users", "list", "--limit", "1", "-q").exit_code == 0


def test_two_processes_refreshing_at_once_both_carry_on(as_admin, config_home):
    expire_access_token(config_home)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "usermgmt", "users", "list", "--limit", "1", "-q"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(XDG_CONFIG_HOME=str(config_home)),
        )
        for _ in range(3)
    ]
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    # Still logged in: nobody spent a refresh token twice (that would revoke the family).
    assert as_admin("users", "list", "--limit", "1", "-q").exit_code == 0
    expire_access_token(config_home)
    assert as_admin("users", "list", "--limit", "1", "-q").exit_code == 0


def test_a_revoked_session_is_exit_7_with_a_clear_message(as_admin, embedded, served):
    assert embedded("sessions", "revoke", served.admin_email, "--all").exit_code == 0
    result = as_admin("users", "list")
    assert result.exit_code == 7
    assert result.error_line.startswith("error: NOT_LOGGED_IN: ")
    assert "usermgmt login --server" in result.error_line and served.url in result.error_line


def test_logout_revokes_the_session_on_the_server(as_admin, config_home, served):
    token = stored(config_home)["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{served.url}/api/v1/auth/me", headers=headers).status_code == 200
    result = as_admin("logout")
    assert result.exit_code == 0, result.stderr
    assert httpx.get(f"{served.url}/api/v1/auth/me", headers=headers).status_code == 401
    context = stored(config_home)
    assert context["access_token"] is None and context["refresh_token"] is None
    assert as_admin("users", "list").exit_code == 7


def test_logging_in_again_ends_the_previous_session(as_admin, config_home, served):
    old = stored(config_home)["access_token"]
    assert login(served, served.admin_email, "admin").exit_code == 0
    headers = {"Authorization": f"Bearer {old}"}
    assert httpx.get(f"{served.url}/api/v1/auth/me", headers=headers).status_code == 401
    assert as_admin("users", "list", "-q").exit_code == 0


def test_a_server_that_went_away_is_exit_5_naming_it(config_home, as_admin):
    path = contexts_file(config_home)
    data = json.loads(path.read_text())
    gone = f"http://127.0.0.1:{free_port()}"
    data["contexts"]["admin"]["server"] = gone
    path.write_text(json.dumps(data))
    result = as_admin("users", "list")
    assert result.exit_code == 5
    assert result.error_line.startswith("error: SERVICE_UNAVAILABLE: ")
    assert gone in result.error_line


# ---- permissions, audit, refusals ----------------------------------------------


def test_a_moderator_reads_but_is_refused_admin_commands(as_moderator, served):
    assert as_moderator("users", "list", "-q").exit_code == 0
    for args in (("users", "lock", served.admin_id), ("audit", "list"), ("roles", "grant",
                 served.admin_id, "moderator")):  # fmt: skip
        result = as_moderator(*args)
        assert result.exit_code == 7, (args, result.stderr)
        assert result.error_line.startswith("error: FORBIDDEN: ")
        assert "mod@example.com" in result.error_line


def test_remote_changes_are_audited_as_the_person_with_the_request_id(as_admin, served):
    email = unique_email()
    uid = as_admin("users", "create", "--email", email, "--no-password", "-q").stdout.strip()
    assert as_admin("users", "lock", uid, "-q").exit_code == 0
    svc = served.services()
    try:
        from usermgmt.core.context import Actor

        events = svc.audit.query(Actor.system(), {"target_id": uid}).data
    finally:
        svc.close()
    assert {e.action for e in events} >= {"user.created", "user.locked"}
    for event in events:
        if event.action in ("user.created", "user.locked"):
            assert str(event.actor_id) == served.admin_id
            assert event.actor_label == "user:root@example.com"
            assert event.request_id and event.request_id.startswith("cli-")
    assert len({e.request_id for e in events}) == len(events)  # one id per command


@pytest.mark.parametrize("args", [("db", "current"), ("db", "upgrade"), ("serve",)], ids=" ".join)
def test_database_commands_are_refused_remotely(as_admin, args):
    result = as_admin(*args)
    assert result.exit_code == 2
    assert "not through a server" in result.error_line


def test_the_console_refuses_to_open_without_a_session(as_admin):
    assert as_admin("logout").exit_code == 0
    result = as_admin("tui")
    assert result.exit_code == 7 and result.error_line.startswith("error: NOT_LOGGED_IN: ")


def test_info_shows_the_server_its_schema_and_who_you_are(as_admin, served):
    record = as_admin("info", "-o", "json").json()
    assert record["server"]["url"] == served.url and record["context"] == "admin"
    assert record["server"]["schema"] and record["server"]["database"] in ("sqlite", "postgresql")
    assert record["user"]["email"] == "root@example.com" and "admin" in record["user"]["roles"]
    text = as_admin("info").stdout
    assert served.url in text and "root@example.com" in text


def test_set_password_revoke_one_session_and_audit_head(as_admin, embedded, served):
    email = unique_email()
    uid = as_admin("users", "create", "--email", email, "--password-stdin", "-q",
                   input=PASSWORD + "\n").stdout.strip()  # fmt: skip
    login(served, email, "other")
    invoke("context", "use", "admin")
    (session,) = as_admin("sessions", "list", uid, "-o", "json").json()
    assert as_admin("sessions", "revoke", session["id"]).exit_code == 0
    assert as_admin("sessions", "list", uid, "-o", "json").json() == []
    result = as_admin("users", "set-password", uid, "--password-stdin", input="N3w-Passw0rd-x\n")
    assert result.exit_code == 0, result.stderr
    assert login(served, email, "other").exit_code == 7  # the old password no longer works
    head = as_admin("audit", "head").stdout.strip()
    assert head == embedded("audit", "head").stdout.strip()
    assert as_admin("audit", "verify", "--expect-head", head).exit_code == 0


# ---- contexts and the environment ------------------------------------------------


def test_context_use_remove_and_per_call_selection(served, config_home, monkeypatch):
    assert login(served, served.admin_email, "a").exit_code == 0
    assert login(served, served.moderator_email, "m").exit_code == 0
    assert invoke("context", "list", "-q").stdout.split() == ["a", "m"]
    assert invoke("users", "lock", served.admin_id).exit_code == 7  # m is current
    assert invoke("--context", "a", "users", "show", served.admin_id, "-q").exit_code == 0
    monkeypatch.setenv("USERMGMT_CONTEXT", "a")
    assert invoke("users", "show", served.admin_id, "-q").exit_code == 0
    monkeypatch.delenv("USERMGMT_CONTEXT")
    assert invoke("context", "use", "a").exit_code == 0
    assert invoke("context", "show", "-o", "json").json()["name"] == "a"
    assert invoke("--context", "nope", "users", "list").exit_code == 3
    assert invoke("context", "remove", "m").exit_code == 0
    assert invoke("context", "list", "-q").stdout.split() == ["a"]
    both = invoke("--context", "a", "--database-url", "sqlite:///x.db", "users", "list")
    assert both.exit_code == 2


def test_server_and_token_from_the_environment_without_a_file(as_admin, config_home, served):
    token = stored(config_home)["access_token"]
    contexts_file(config_home).unlink()
    env = {"USERMGMT_SERVER": served.url, "USERMGMT_TOKEN": token}
    ok = run_process("users", "list", "-q", config_home=config_home, env=env)
    assert ok.returncode == 0, ok.stderr
    assert not contexts_file(config_home).exists()
    refused = run_process(
        "users", "list", config_home=config_home, env={**env, "USERMGMT_TOKEN": "umk_bogus"}
    )
    assert refused.returncode == 7 and "USERMGMT_TOKEN" in refused.stderr
    assert "umk_bogus" not in refused.stderr


def test_a_remote_listing_never_imports_the_database_layer(as_admin, config_home):
    proc = run_process(
        "users", "list", "--limit", "20", config_home=config_home,
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    heavy = {m for m in imported if m.split(".")[0] in ("sqlalchemy", "alembic", "psycopg")}
    assert heavy == set()
    assert "usermgmt.core.models" not in imported and "usermgmt.core.db" not in imported
    assert "httpx" in imported  # it did go through the client
    assert "pygments" not in imported and "click" not in imported  # nor httpx's CLI
    # A listing prints the users as the API sent them (usermgmt.client.wire).
    assert {m for m in imported if m.split(".")[0] in ("pydantic", "pydantic_core")} == set()


def test_without_a_context_or_database_setting_the_cli_is_embedded(config_home, tmp_path):
    data = tmp_path / "data"
    proc = run_process(
        "users", "list", "-q", config_home=config_home, env={"USERMGMT_DATA_DIR": str(data)}
    )
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(data)


def test_a_cron_key_scoped_to_maintenance_purges_and_nothing_else(as_admin, config_home, served):
    """USERMGMT_SERVER + USERMGMT_TOKEN with an API key (issue 17's cron story)."""
    made = as_admin("keys", "create", "--name", "cron", "--scope", "maintenance", "-q")
    assert made.exit_code == 0, made.stderr
    secret = made.stdout.strip()
    contexts_file(config_home).unlink()
    env = {"USERMGMT_SERVER": served.url, "USERMGMT_TOKEN": secret}
    purged = run_process("tokens", "purge", "--dry-run", config_home=config_home, env=env)
    assert purged.returncode == 0, purged.stderr
    refused = run_process("users", "list", config_home=config_home, env=env)
    assert refused.returncode == 7 and "users:read" in refused.stderr
    assert secret not in purged.stdout + purged.stderr + refused.stdout + refused.stderr
