"""Failed logins cannot log anyone out; the audit head is published (metrics, start-up log).

Covers usermgmt.api.metrics and the audit head in the server's start-up log, and the
login lockout as the API answers it.
"""

from __future__ import annotations

import json

from .api_helpers import API, STRONG_PASSWORD, assert_error

WRONG = "Wrong-Passw0rd"


def test_wrong_passwords_for_an_admins_email_do_not_log_the_admin_out(make_api, operator, ctx):
    api = make_api(lockout_threshold=5)
    root_id, _ = api.make_user(operator, ctx, "root@example.com", roles=("admin",), username="root")
    _, other_admin = api.make_user(operator, ctx, "ops@example.com", roles=("admin",))
    held = api.login("root@example.com").json["tokens"]

    for _ in range(4):
        assert_error(api.login("root@example.com", WRONG), 401, "INVALID_CREDENTIALS")
    assert_error(api.login("root@example.com", WRONG), 423, "ACCOUNT_LOCKED")

    me = api.simulate_get(f"{API}/auth/me", headers=api.bearer(held["access_token"]))
    assert me.status_code == 200 and me.json["locked_until"] is None
    users = api.simulate_get(f"{API}/users", headers=api.bearer(held["access_token"]))
    assert users.status_code == 200  # still acting as an admin
    refreshed = api.simulate_post(
        f"{API}/auth/refresh", json={"refresh_token": held["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    fresh = refreshed.json["tokens"]
    assert (
        api.simulate_get(f"{API}/auth/me", headers=api.bearer(fresh["access_token"])).status_code
        == 200
    )
    # Password logins with that identifier are what is blocked, the right password too.
    assert_error(api.login("root@example.com"), 423, "ACCOUNT_LOCKED")
    by_username = api.simulate_post(
        f"{API}/auth/login", json={"username": "root", "password": STRONG_PASSWORD}
    )
    assert by_username.status_code == 200

    # An admin lock still ends every session at once.
    locked = api.simulate_post(f"{API}/users/{root_id}/lock", headers=api.bearer(other_admin))
    assert locked.status_code == 200
    gone = api.simulate_get(f"{API}/auth/me", headers=api.bearer(fresh["access_token"]))
    assert assert_error(gone, 401, "UNAUTHORIZED")["message"] == "Session revoked"
    assert_error(
        api.simulate_post(f"{API}/auth/refresh", json={"refresh_token": fresh["refresh_token"]}),
        401,
        "UNAUTHORIZED",
    )
    actions = [
        (e.action, e.actor_label)
        for e in api.services.audit.query(operator, {"target_id": root_id}).data
    ]
    assert ("user.login_blocked", "system:lockout") in actions
    assert [a for a in actions if a[0] == "user.locked"] == [
        ("user.locked", "user:ops@example.com")
    ]


def _head_samples(text: str) -> tuple[str, str]:
    seq = [line for line in text.splitlines() if line.startswith("usermgmt_audit_head_seq ")]
    info = [line for line in text.splitlines() if line.startswith("usermgmt_audit_head_info{")]
    assert len(seq) == 1 and len(info) == 1, text
    return seq[0], info[0]


def test_metrics_publish_the_current_audit_head(api, make_services, operator, ctx):
    assert _head_samples(api.simulate_get("/metrics").text) == (
        "usermgmt_audit_head_seq 0.0",
        f'usermgmt_audit_head_info{{hash="{"0" * 64}",seq="0"}} 1.0',
    )
    # Written by another process (here: other services on the same database).
    make_services().users.create(operator, ctx, {"email": "ada@example.com"})
    head = api.services.audit.head()
    assert head.seq == 1
    assert _head_samples(api.simulate_get("/metrics").text) == (
        "usermgmt_audit_head_seq 1.0",
        f'usermgmt_audit_head_info{{hash="{head.hash}",seq="1"}} 1.0',
    )


def test_metrics_of_workers_publish_the_audit_head_too(api, monkeypatch, tmp_path):
    shared = tmp_path / "prometheus"  # the workers' value files, none written yet
    shared.mkdir()
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(shared))
    seq, _info = _head_samples(api.simulate_get("/metrics").text)
    assert seq == "usermgmt_audit_head_seq 0.0"


def test_every_start_logs_the_audit_head(start_server, database_url, make_services, operator, ctx):
    services = make_services()
    services.users.create(operator, ctx, {"email": "ada@example.com"})
    head = services.audit.head()
    server = start_server(database_url)
    lines = [json.loads(x) for x in server.log().splitlines() if x.startswith("{")]
    logged = [x for x in lines if x["message"].startswith("audit head ")]
    assert [x["message"] for x in logged] == [f"audit head seq=1 hash={head.hash}"]
    assert logged[0]["head"] == str(head)
