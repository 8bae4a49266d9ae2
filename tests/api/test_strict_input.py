"""Writes take exactly what the schema says: JSON booleans, null only where a column
may be empty, text without control characters, emails one per address."""

from __future__ import annotations

import pytest

from .api_helpers import API, STRONG_PASSWORD, assert_error

BIDI = "Ada\u202egnp.exe"  # RIGHT-TO-LEFT OVERRIDE: shows as "Adaexe.png"


@pytest.fixture
def target(api, operator, ctx) -> str:
    return api.make_user(operator, ctx, "ada@example.com", first_name="Ada")[0]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"is_active": "yes"}, "is_active"),
        ({"is_active": 0}, "is_active"),
        ({"email_verified": "true"}, "email_verified"),
        ({"email": None}, "email"),
        ({"profile": {"timezone": None}}, "profile.timezone"),
        ({"profile": {"locale": "en_" + "x" * 14}}, "profile.locale"),
        ({"first_name": BIDI}, "first_name"),
        ({"last_name": "Love\x1blace"}, "last_name"),
        ({"profile": {"bio": "hi\x85there"}}, "profile.bio"),
    ],
)
def test_patch_refuses_what_the_schema_refuses(api, admin, target, body, field):
    response = api.simulate_patch(f"{API}/users/{target}", json=body, headers=api.bearer(admin[1]))
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert set(error["field_errors"]) == {field}
    after = api.simulate_get(f"{API}/users/{target}", headers=api.bearer(admin[1])).json
    assert after["first_name"] == "Ada" and after["is_active"] is True
    assert after["profile"]["timezone"] == "UTC"


def test_leaving_fields_out_keeps_them_and_null_clears_what_may_be_empty(api, admin, target):
    headers = api.bearer(admin[1])
    done = api.simulate_patch(
        f"{API}/users/{target}",
        json={"first_name": None, "is_active": False, "profile": {"bio": "one\ntwo"}},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    user = done.json
    assert user["first_name"] is None and user["is_active"] is False
    assert user["profile"]["bio"] == "one\ntwo" and user["profile"]["timezone"] == "UTC"


def test_self_service_refuses_control_characters_in_names(api, target):
    token = api.token_for("ada@example.com")
    response = api.simulate_patch(
        f"{API}/auth/me", json={"first_name": BIDI}, headers=api.bearer(token)
    )
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["field_errors"] == {
        "first_name": ["Must not contain control characters or bidirectional overrides"]
    }


def test_query_booleans_are_true_or_false(api, admin):
    headers = api.bearer(admin[1])
    ok = api.simulate_get(f"{API}/users", params={"include_deleted": "true"}, headers=headers)
    assert ok.status_code == 200
    for value in ("yes", "1", "True"):
        bad = api.simulate_get(f"{API}/users", params={"include_deleted": value}, headers=headers)
        assert_error(bad, 400, "VALIDATION_ERROR")


def test_a_look_alike_email_is_the_existing_account(api, target):
    taken = api.register("ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ")  # noqa: RUF001 - fullwidth
    assert_error(taken, 409, "EMAIL_EXISTS")
    assert api.login("ＡＤＡ@example.com").json["user"]["id"] == target  # noqa: RUF001


def test_register_says_where_the_new_user_is(api):
    created = api.register("new@example.com", STRONG_PASSWORD)
    assert created.status_code == 201
    assert created.headers["Location"] == f"{API}/users/{created.json['user']['id']}"
