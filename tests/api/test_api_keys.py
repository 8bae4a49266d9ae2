"""API keys through the REST API (both databases): create/list/revoke as the contract
says, a key accepted wherever an access token is, scopes meeting the owner's current
roles, revocation seen by another server at once, expiry, the rate limit, and keys
kept out of logs and metrics."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update

from usermgmt.core.models import ApiKey

from .api_helpers import API, Api, assert_error


def _create(api, token, scopes, **extra):
    result = api.simulate_post(
        f"{API}/api-keys",
        json={"name": "cron", "scopes": scopes, **extra},
        headers=Api.bearer(token),
    )
    assert result.status_code == 201, result.text
    return result


def test_create_list_use_and_revoke(api, admin, user):
    admin_id, admin_token = admin
    user_id, _ = user
    created = _create(api, admin_token, ["users:read"], expires_in_days=30)
    body = created.json
    secret, key = body["secret"], body["key"]
    assert set(body) == {"key", "secret"} and secret.startswith("umk_")
    assert created.headers["Location"] == f"{API}/api-keys/{key['id']}"
    assert created.headers["Cache-Control"] == "no-store"
    assert key["user_id"] == admin_id and key["scopes"] == ["users:read"]
    assert key["state"] == "active" and key["expires_at"] and secret.startswith(key["prefix"])

    got = api.simulate_get(f"{API}/users/{user_id}", headers=Api.bearer(secret))
    assert got.status_code == 200 and got.json["kind"] == "person"
    listed = api.simulate_get(f"{API}/api-keys", headers=Api.bearer(admin_token))
    assert [k["id"] for k in listed.json["data"]] == [key["id"]]
    assert listed.json["data"][0]["last_used_ip"] is not None
    assert secret not in listed.text

    revoked = api.simulate_delete(f"{API}/api-keys/{key['id']}", headers=Api.bearer(secret))
    assert revoked.status_code == 204
    error = assert_error(
        api.simulate_get(f"{API}/users/{user_id}", headers=Api.bearer(secret)),
        401,
        "UNAUTHORIZED",
    )
    assert error["message"] == "API key revoked"
    again = api.simulate_delete(f"{API}/api-keys/{key['id']}", headers=Api.bearer(admin_token))
    assert again.status_code == 204


def test_who_may_see_and_revoke_whose_keys(api, admin, user):
    admin_id, admin_token = admin
    user_id, user_token = user
    admins_key = _create(api, admin_token, ["users:read"]).json["key"]
    users_key = _create(api, user_token, ["users:read"]).json["key"]
    mine = api.simulate_get(f"{API}/api-keys", headers=Api.bearer(user_token)).json["data"]
    assert [k["id"] for k in mine] == [users_key["id"]]
    assert_error(
        api.simulate_get(f"{API}/api-keys?all=true", headers=Api.bearer(user_token)),
        403,
        "FORBIDDEN",
    )
    assert_error(
        api.simulate_delete(f"{API}/api-keys/{admins_key['id']}", headers=Api.bearer(user_token)),
        404,
        "NOT_FOUND",
    )
    assert_error(
        api.simulate_post(
            f"{API}/api-keys",
            json={"name": "x", "scopes": ["users:read"], "user_id": admin_id},
            headers=Api.bearer(user_token),
        ),
        403,
        "FORBIDDEN",
    )
    everyone = api.simulate_get(f"{API}/api-keys?all=true", headers=Api.bearer(admin_token))
    assert {k["user_id"] for k in everyone.json["data"]} == {admin_id, user_id}
    for_user = api.simulate_get(
        f"{API}/api-keys?user_id={user_id}", headers=Api.bearer(admin_token)
    )
    assert [k["id"] for k in for_user.json["data"]] == [users_key["id"]]
    for bad in ({"name": "x", "scopes": []}, {"name": " ", "scopes": ["users:read"]}):
        assert_error(
            api.simulate_post(f"{API}/api-keys", json=bad, headers=Api.bearer(admin_token)),
            400,
            "VALIDATION_ERROR",
        )


def test_scopes_meet_the_owners_current_roles(api, admin, moderator, user, operator, ctx):
    admin_id, admin_token = admin
    _mod_id, mod_token = moderator
    user_id, _ = user
    reader = _create(api, admin_token, ["users:read"]).json["secret"]
    assert api.simulate_get(f"{API}/users", headers=Api.bearer(reader)).status_code == 200
    assert_error(api.simulate_get(f"{API}/audit", headers=Api.bearer(reader)), 403, "FORBIDDEN")
    assert_error(
        api.simulate_patch(
            f"{API}/users/{user_id}", json={"first_name": "X"}, headers=Api.bearer(reader)
        ),
        403,
        "FORBIDDEN",
    )
    # A moderator's key with every scope still cannot read the audit log.
    wide = _create(api, mod_token, ["admin"]).json["secret"]
    assert_error(api.simulate_get(f"{API}/audit", headers=Api.bearer(wide)), 403, "FORBIDDEN")
    patched = api.simulate_patch(
        f"{API}/users/{user_id}", json={"first_name": "Ann"}, headers=Api.bearer(wide)
    )
    assert patched.status_code == 200

    # Demoting the owner narrows the key on the very next request.
    auditor = _create(api, admin_token, ["audit:read"]).json["secret"]
    api.services.users.create(
        operator, ctx, {"email": "other-admin@example.com", "roles": ["admin"]}
    )
    assert api.simulate_get(f"{API}/audit", headers=Api.bearer(auditor)).status_code == 200
    api.services.roles.set(operator, ctx, admin_id, ["user"])
    assert_error(api.simulate_get(f"{API}/audit", headers=Api.bearer(auditor)), 403, "FORBIDDEN")


def test_revocation_bites_on_another_server_at_once(make_api, operator, ctx):
    first = make_api()
    second = make_api()  # another server process over the same database
    _id, token = first.make_user(operator, ctx, "root@example.com", roles=("admin",))
    made = _create(first, token, ["users:read"]).json
    secret = made["secret"]
    assert second.simulate_get(f"{API}/users", headers=Api.bearer(secret)).status_code == 200
    first.simulate_delete(f"{API}/api-keys/{made['key']['id']}", headers=Api.bearer(token))
    assert_error(
        second.simulate_get(f"{API}/users", headers=Api.bearer(secret)), 401, "UNAUTHORIZED"
    )


def test_an_expired_key_fails(api, admin):
    _id, token = admin
    secret = _create(api, token, ["users:read"], expires_in_days=1).json["secret"]
    assert api.simulate_get(f"{API}/users", headers=Api.bearer(secret)).status_code == 200
    with api.services.db.write() as s:
        s.execute(update(ApiKey).values(expires_at=api.services.clock.now() - timedelta(seconds=1)))
    error = assert_error(
        api.simulate_get(f"{API}/users", headers=Api.bearer(secret)), 401, "UNAUTHORIZED"
    )
    assert error["message"] == "API key expired"


def test_failed_keys_count_toward_the_clients_login_limit(make_api, operator, ctx):
    api = make_api(rate_limit_login="3/minute")
    _id, token = api.make_user(operator, ctx, "root@example.com", roles=("admin",))  # 1 login
    good = _create(api, token, ["users:read"]).json["secret"]
    bad = {"Authorization": "Bearer umk_" + "x" * 43}
    assert_error(api.simulate_get(f"{API}/users", headers=bad), 401, "UNAUTHORIZED")
    assert_error(api.simulate_get(f"{API}/users", headers=bad), 401, "UNAUTHORIZED")
    limited = api.simulate_get(f"{API}/users", headers=bad)
    assert_error(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["Retry-After"]) >= 1
    assert_error(api.login("root@example.com"), 429, "RATE_LIMITED")  # the same counter
    # A valid key is not slowed down by the limit.
    assert api.simulate_get(f"{API}/users", headers=Api.bearer(good)).status_code == 200


def test_keys_never_reach_logs_or_metrics(api, admin, caplog):
    caplog.set_level(logging.DEBUG)
    _id, token = admin
    secret = _create(api, token, ["users:read"]).json["secret"]
    api.simulate_get(f"{API}/users", headers=Api.bearer(secret))
    api.simulate_get(f"{API}/users", headers=Api.bearer(secret[:-2] + "zz"))
    api.simulate_get(f"{API}/nowhere", headers=Api.bearer(secret))
    metrics = api.simulate_get("/metrics").text
    audit = api.simulate_get(f"{API}/audit?limit=100", headers=Api.bearer(token)).text
    logged = caplog.text + "".join(repr(r.__dict__) for r in caplog.records)
    assert "api_key.created" in audit and "GET" in logged
    for text in (logged, metrics, audit):
        assert secret not in text and secret[4:20] not in text and secret[:-2] not in text


def test_service_accounts_through_the_api(api, admin):
    _id, token = admin
    created = api.simulate_post(
        f"{API}/users",
        json={"email": "ci@ops.example.com", "username": "ci-bot", "kind": "service"},
        headers=Api.bearer(token),
    )
    assert created.status_code == 201, created.text
    assert created.json["kind"] == "service"
    svc_id = created.json["id"]
    listed = api.simulate_get(f"{API}/users", headers=Api.bearer(token)).json["data"]
    assert {u["id"]: u["kind"] for u in listed}[svc_id] == "service"
    assert_error(
        api.simulate_post(
            f"{API}/auth/login", json={"username": "ci-bot", "password": "Anything-123"}
        ),
        401,
        "INVALID_CREDENTIALS",
    )
    key = _create(api, token, ["users:read"], user_id=svc_id).json
    assert key["key"]["owner"] == "ci-bot" and key["key"]["owner_kind"] == "service"
    me = api.simulate_get(f"{API}/auth/me", headers=Api.bearer(key["secret"]))
    assert me.status_code == 200 and me.json["id"] == svc_id
    # Any key may ask whose it is, even one scoped to maintenance alone.
    cron = _create(api, token, ["maintenance"], user_id=svc_id).json["secret"]
    assert api.simulate_get(f"{API}/auth/me", headers=Api.bearer(cron)).json["id"] == svc_id
    assert_error(
        api.simulate_get(f"{API}/users/{svc_id}", headers=Api.bearer(cron)), 403, "FORBIDDEN"
    )
    assert (
        api.simulate_delete(f"{API}/users/{svc_id}", headers=Api.bearer(token)).status_code == 204
    )
    assert_error(
        api.simulate_get(f"{API}/auth/me", headers=Api.bearer(key["secret"])),
        401,
        "UNAUTHORIZED",
    )
