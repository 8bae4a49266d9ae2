"""Auth endpoints over falcon.testing, on both databases."""

from __future__ import annotations

from .api_helpers import API, OTHER_PASSWORD, STRONG_PASSWORD, assert_error, mail_token


def test_register_returns_user_and_tokens_uncached(api):
    result = api.register("Grace@Example.com", username="grace", first_name="Grace")
    assert result.status_code == 201, result.text
    assert result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert body["user"]["email"] == "grace@example.com"
    assert body["user"]["roles"] == ["user"]
    assert "password_hash" not in body["user"]
    assert body["tokens"]["token_type"] == "Bearer"
    assert body["tokens"]["expires_in"] == 900
    assert result.headers["Location"] == f"{API}/users/{body['user']['id']}"
    me = api.simulate_get(f"{API}/auth/me", headers=api.bearer(body["tokens"]["access_token"]))
    assert me.status_code == 200
    assert me.json["id"] == body["user"]["id"]
    assert me.json["created_at"].endswith("Z")


def test_register_conflicts_and_validation(api):
    assert api.register("dup@example.com", username="dup").status_code == 201
    assert_error(api.register("DUP@example.com"), 409, "EMAIL_EXISTS")
    assert_error(api.register("other@example.com", username="DUP"), 409, "USERNAME_EXISTS")
    error = assert_error(api.register("not-an-email"), 400, "VALIDATION_ERROR")
    assert "email" in error["field_errors"]
    error = assert_error(
        api.register("weak@example.com", password="password"), 400, "VALIDATION_ERROR"
    )
    assert "password" in error["field_errors"]
    long_password = "A1" + "x" * 80
    error = assert_error(
        api.register("long@example.com", password=long_password), 400, "VALIDATION_ERROR"
    )
    assert "72" in str(error["field_errors"])
    # Mass assignment: a privileged field is refused, never applied.
    error = assert_error(api.register("mass@example.com", roles=["admin"]), 400, "VALIDATION_ERROR")
    assert error["field_errors"] == {"roles": ["Unknown or forbidden field"]}


def test_registration_can_be_switched_off(make_api):
    api = make_api(allow_registration=False)
    assert_error(api.register("x@example.com"), 403, "FORBIDDEN")


def test_login_same_answer_for_unknown_email_and_wrong_password(api, user):
    ok = api.login("ada@example.com")
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"
    assert ok.json["user"]["last_login_at"] is not None
    by_username = api.simulate_post(
        f"{API}/auth/login", json={"username": "ada", "password": STRONG_PASSWORD}
    )
    assert by_username.status_code == 200
    wrong = assert_error(api.login("ada@example.com", "Wrong-Passw0rd"), 401, "INVALID_CREDENTIALS")
    unknown = assert_error(
        api.login("nobody@example.com", "Wrong-Passw0rd"), 401, "INVALID_CREDENTIALS"
    )
    assert wrong["message"] == unknown["message"]
    assert_error(
        api.simulate_post(f"{API}/auth/login", json={"password": "x"}), 400, "VALIDATION_ERROR"
    )


def test_lockout_is_423_with_locked_until(make_api, operator, ctx):
    api = make_api(lockout_threshold=3)
    api.make_user(operator, ctx, "lock@example.com")
    for _ in range(2):
        assert_error(api.login("lock@example.com", "Wrong-Passw0rd"), 401, "INVALID_CREDENTIALS")
    error = assert_error(api.login("lock@example.com", "Wrong-Passw0rd"), 423, "ACCOUNT_LOCKED")
    assert error["details"]["locked_until"].endswith("Z")
    locked = api.login("lock@example.com")  # even the right password now
    assert_error(locked, 423, "ACCOUNT_LOCKED")
    assert int(locked.headers["Retry-After"]) > 0
    # Unknown identifiers lock the same way: 423 reveals nothing.
    for _ in range(3):
        last = api.login("ghost@example.com", "Wrong-Passw0rd")
    assert_error(last, 423, "ACCOUNT_LOCKED")
    metrics = api.simulate_get("/metrics").text
    assert 'usermgmt_logins_total{outcome="invalid_credentials"} 4.0' in metrics
    assert "usermgmt_login_lockouts_total 3.0" in metrics


def test_deactivated_account_login_is_403(api, operator, ctx):
    uid, token = api.make_user(operator, ctx, "gone@example.com")
    api.services.users.update(operator, ctx, uid, {"is_active": False})
    assert_error(api.login("gone@example.com"), 403, "ACCOUNT_DISABLED")
    # Its existing token stops working at once.
    assert_error(api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)), 401, "UNAUTHORIZED")


def test_refresh_rotates_and_reuse_revokes_family(make_api, operator, ctx):
    api = make_api(refresh_reuse_grace=0)
    api.make_user(operator, ctx, "r@example.com")
    tokens = api.login("r@example.com").json["tokens"]
    first = api.simulate_post(
        f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert first.status_code == 200, first.text
    assert first.headers["Cache-Control"] == "no-store"
    new = first.json["tokens"]
    assert new["refresh_token"] != tokens["refresh_token"]
    reused = api.simulate_post(
        f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_error(reused, 401, "TOKEN_REUSED")
    # The whole family is dead: the successor and its access token too.
    again = api.simulate_post(f"{API}/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert_error(again, 401, "UNAUTHORIZED")
    me = api.simulate_get(f"{API}/auth/me", headers=api.bearer(new["access_token"]))
    assert_error(me, 401, "UNAUTHORIZED")
    bogus = api.simulate_post(f"{API}/auth/refresh", json={"refresh_token": "nope"})
    assert_error(bogus, 401, "UNAUTHORIZED")


def test_refresh_ignores_a_stale_access_token(api, user):
    tokens = api.login("ada@example.com").json["tokens"]
    result = api.simulate_post(
        f"{API}/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers=api.bearer("expired.or.garbage"),
    )
    assert result.status_code == 200


def test_logout_revokes_the_session_at_once(api, user):
    _uid, token = user
    assert api.simulate_post(f"{API}/auth/logout", headers=api.bearer(token)).status_code == 204
    assert_error(api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)), 401, "UNAUTHORIZED")
    assert_error(api.simulate_post(f"{API}/auth/logout"), 401, "UNAUTHORIZED")


def test_me_patch_allows_profile_only(api, user):
    _uid, token = user
    result = api.simulate_patch(
        f"{API}/auth/me",
        headers=api.bearer(token),
        json={
            "first_name": " Augusta ",
            "profile": {"bio": "Analyst", "timezone": "Europe/London"},
        },
    )
    assert result.status_code == 200, result.text
    assert result.json["first_name"] == "Augusta"
    assert result.json["profile"]["bio"] == "Analyst"
    for forbidden in ({"roles": ["admin"]}, {"is_active": False}, {"email_verified": True}):
        refused = api.simulate_patch(f"{API}/auth/me", headers=api.bearer(token), json=forbidden)
        assert_error(refused, 400, "VALIDATION_ERROR")
    assert api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)).json["roles"] == ["user"]


def test_change_password_revokes_other_sessions(api, user):
    _uid, token = user
    other = api.token_for("ada@example.com")
    wrong = api.simulate_post(
        f"{API}/auth/change-password",
        headers=api.bearer(token),
        json={"current_password": "Wrong-Passw0rd", "new_password": OTHER_PASSWORD},
    )
    assert_error(wrong, 400, "VALIDATION_ERROR")
    ok = api.simulate_post(
        f"{API}/auth/change-password",
        headers=api.bearer(token),
        json={"current_password": STRONG_PASSWORD, "new_password": OTHER_PASSWORD},
    )
    assert ok.status_code == 204, ok.text
    assert api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)).status_code == 200
    assert_error(api.simulate_get(f"{API}/auth/me", headers=api.bearer(other)), 401, "UNAUTHORIZED")
    assert api.login("ada@example.com", OTHER_PASSWORD).status_code == 200


def test_forgot_and_reset_password(api, user):
    _uid, token = user
    known = api.simulate_post(f"{API}/auth/forgot-password", json={"email": "ada@example.com"})
    unknown = api.simulate_post(f"{API}/auth/forgot-password", json={"email": "no@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    raw = mail_token(api.services, "ada@example.com", "password_reset")
    reset = api.simulate_post(
        f"{API}/auth/reset-password", json={"token": raw, "new_password": OTHER_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    assert_error(api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)), 401, "UNAUTHORIZED")
    again = api.simulate_post(
        f"{API}/auth/reset-password", json={"token": raw, "new_password": OTHER_PASSWORD}
    )
    assert_error(again, 400, "INVALID_TOKEN")
    assert api.login("ada@example.com", OTHER_PASSWORD).status_code == 200


def test_verify_and_resend_verification(api):
    registered = api.register("v@example.com").json
    token = registered["tokens"]["access_token"]
    resend = api.simulate_post(f"{API}/auth/resend-verification", headers=api.bearer(token))
    assert resend.status_code == 202
    raw = mail_token(api.services, "v@example.com", "verify_email")
    assert api.simulate_post(f"{API}/auth/verify-email", json={"token": raw}).status_code == 204
    assert api.simulate_get(f"{API}/auth/me", headers=api.bearer(token)).json["email_verified"]
    used = api.simulate_post(f"{API}/auth/verify-email", json={"token": raw})
    assert_error(used, 400, "INVALID_TOKEN")
    assert_error(api.simulate_post(f"{API}/auth/resend-verification"), 401, "UNAUTHORIZED")
