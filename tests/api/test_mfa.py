"""The second factor over the REST API (usermgmt.api.mfa_resources, the login answer of
usermgmt.api.resources and the restricted session of usermgmt.api.middleware), on both
databases: the contract's paths, bodies and error codes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pyotp
import pytest

from .api_helpers import API, STRONG_PASSWORD, assert_error

START = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)


@pytest.fixture
def mfa_api(make_api, clock):
    clock.set(START)
    return make_api(clock=clock)


def enrol(api, token: str) -> tuple[str, list[str]]:
    headers = api.bearer(token)
    setup = api.simulate_post(f"{API}/auth/mfa/totp/setup", headers=headers)
    assert setup.status_code == 200, setup.text
    assert setup.headers["Cache-Control"] == "no-store"
    secret = setup.json["secret"]
    assert setup.json["otpauth_uri"].startswith("otpauth://totp/")
    assert setup.json["qr_svg"].startswith("<svg")
    code = pyotp.TOTP(secret).at(api.services.clock.now())
    done = api.simulate_post(f"{API}/auth/mfa/totp/confirm", headers=headers, json={"code": code})
    assert done.status_code == 200, done.text
    return secret, done.json["recovery_codes"]


def next_code(api, secret: str) -> str:
    return pyotp.TOTP(secret).at(api.services.clock.advance(seconds=30))


def mfa_login(api, email="ada@example.com") -> str:
    answer = api.login(email)
    assert answer.status_code == 200, answer.text
    body = answer.json
    assert body["mfa_required"] is True and "tokens" not in body
    assert body["methods"] == ["totp", "recovery_code"]
    return body["mfa_token"]


def verify(api, token: str, **code):
    return api.simulate_post(f"{API}/auth/mfa/verify", json={"mfa_token": token, **code})


def test_enrol_login_and_verify(mfa_api, operator, ctx, caplog):
    caplog.set_level(logging.DEBUG)
    _id, token = mfa_api.make_user(operator, ctx, "ada@example.com")
    secret, codes = enrol(mfa_api, token)
    me = mfa_api.simulate_get(f"{API}/auth/me", headers=mfa_api.bearer(token))
    assert me.json["mfa_enabled"] is True
    done = verify(mfa_api, mfa_login(mfa_api), code=next_code(mfa_api, secret))
    assert done.status_code == 200, done.text
    assert done.json["user"]["mfa_enabled"] is True and done.json["tokens"]["access_token"]
    # The same step again (a replay) is refused, with the contract's code.
    again = verify(
        mfa_api, mfa_login(mfa_api), code=pyotp.TOTP(secret).at(mfa_api.services.clock.now())
    )
    assert_error(again, 401, "INVALID_MFA_CODE")
    assert_error(verify(mfa_api, "no-such-token", code="123456"), 401, "INVALID_MFA_CODE")
    assert_error(
        verify(mfa_api, mfa_login(mfa_api), code="123456", recovery_code=codes[0]),
        400,
        "VALIDATION_ERROR",
    )
    assert verify(mfa_api, mfa_login(mfa_api), recovery_code=codes[0]).status_code == 200
    assert_error(
        verify(mfa_api, mfa_login(mfa_api), recovery_code=codes[0]), 401, "INVALID_MFA_CODE"
    )
    assert secret not in caplog.text and not any(c in caplog.text for c in codes)


def test_wrong_codes_count_toward_the_ip_rate_limit(make_api, clock, operator, ctx):
    clock.set(START)
    api = make_api(clock=clock, rate_limit_login="3/minute")
    _id, token = api.make_user(operator, ctx, "ada@example.com")  # one login
    enrol(api, token)
    mfa_token = mfa_login(api)  # two
    assert_error(verify(api, mfa_token, code="000000"), 401, "INVALID_MFA_CODE")  # three
    assert_error(verify(api, mfa_token, code="000000"), 429, "RATE_LIMITED")


def test_wrong_codes_lock_the_identifier(make_api, clock, operator, ctx):
    clock.set(START)
    api = make_api(clock=clock, lockout_threshold=2)
    _id, token = api.make_user(operator, ctx, "ada@example.com")
    secret, _codes = enrol(api, token)
    mfa_token = mfa_login(api)
    assert_error(verify(api, mfa_token, code="000000"), 401, "INVALID_MFA_CODE")
    locked = verify(api, mfa_token, code="000000")
    assert_error(locked, 423, "ACCOUNT_LOCKED")
    assert_error(verify(api, mfa_token, code=next_code(api, secret)), 423, "ACCOUNT_LOCKED")
    assert_error(api.login("ada@example.com"), 423, "ACCOUNT_LOCKED")


def test_disable_and_regenerate(mfa_api, operator, ctx):
    _id, token = mfa_api.make_user(operator, ctx, "ada@example.com")
    secret, old = enrol(mfa_api, token)
    headers = mfa_api.bearer(token)
    fresh = mfa_api.simulate_post(
        f"{API}/auth/mfa/recovery-codes", headers=headers, json={"code": next_code(mfa_api, secret)}
    )
    assert fresh.status_code == 200 and not set(fresh.json["recovery_codes"]) & set(old)
    assert_error(verify(mfa_api, mfa_login(mfa_api), recovery_code=old[1]), 401, "INVALID_MFA_CODE")
    wrong = mfa_api.simulate_delete(
        f"{API}/auth/mfa/totp", headers=headers, json={"password": "Wr0ng-Password", "code": "1"}
    )
    assert_error(wrong, 400, "VALIDATION_ERROR")
    off = mfa_api.simulate_delete(
        f"{API}/auth/mfa/totp",
        headers=headers,
        json={"password": STRONG_PASSWORD, "code": next_code(mfa_api, secret)},
    )
    assert off.status_code == 204, off.text
    assert mfa_api.login("ada@example.com").json["tokens"]


def test_policy_restricts_the_session_until_enrolment(make_api, clock, operator, ctx):
    clock.set(START)
    api = make_api(clock=clock, mfa_required_roles="admin,moderator")
    user_id, _token = api.make_user(operator, ctx, "plain@example.com")
    api.services.users.create(
        operator,
        ctx,
        {"email": "mod@example.com", "password": STRONG_PASSWORD, "roles": ["moderator"]},
    )
    answer = api.login("mod@example.com").json
    assert answer["mfa_enrolment_required"] is True
    headers = api.bearer(answer["tokens"]["access_token"])
    assert_error(api.simulate_get(f"{API}/users/{user_id}", headers=headers), 403, "FORBIDDEN")
    assert api.simulate_get(f"{API}/auth/me", headers=headers).status_code == 200
    enrol(api, answer["tokens"]["access_token"])
    assert api.simulate_get(f"{API}/users/{user_id}", headers=headers).status_code == 200


def test_admin_reset_ends_the_users_sessions(mfa_api, operator, ctx):
    user_id, token = mfa_api.make_user(operator, ctx, "ada@example.com")
    enrol(mfa_api, token)
    _admin_id, admin_token = mfa_api.make_user(operator, ctx, "root@example.com", roles=("admin",))
    shown = mfa_api.simulate_get(f"{API}/users/{user_id}", headers=mfa_api.bearer(admin_token))
    assert shown.json["mfa_enabled"] is True
    status = mfa_api.simulate_get(f"{API}/users/{user_id}/mfa", headers=mfa_api.bearer(admin_token))
    assert status.json["recovery_codes_left"] == 10
    assert_error(
        mfa_api.simulate_delete(f"{API}/users/{user_id}/mfa", headers=mfa_api.bearer(token)),
        403,
        "FORBIDDEN",
    )
    reset = mfa_api.simulate_delete(
        f"{API}/users/{user_id}/mfa", headers=mfa_api.bearer(admin_token)
    )
    assert reset.status_code == 204
    assert_error(
        mfa_api.simulate_get(f"{API}/auth/me", headers=mfa_api.bearer(token)), 401, "UNAUTHORIZED"
    )
    assert mfa_api.login("ada@example.com").json["user"]["mfa_enabled"] is False
    again = mfa_api.simulate_delete(
        f"{API}/users/{user_id}/mfa", headers=mfa_api.bearer(admin_token)
    )
    assert_error(again, 409, "CONFLICT")
