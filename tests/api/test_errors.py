"""Input the database refuses is a 400 naming the field, never a 409 or 503; bugs are 500s.

Whether the input models or the database catch these inputs, the answer is the
same: 400 ``VALIDATION_ERROR`` with ``field_errors`` naming the field.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from .api_helpers import API, assert_error


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": None}, "email"),  # was 409 EMAIL_EXISTS
        ({"is_active": None}, "is_active"),  # was 409 CONFLICT
        ({"profile": {"locale": "en-abcdefgh-abcdefgh"}}, "profile.locale"),  # was 503 / stored
    ],
)
def test_a_value_the_database_refuses_is_a_validation_error(api, admin, user, body, field):
    _, token = admin
    user_id, _ = user
    result = api.simulate_patch(f"{API}/users/{user_id}", json=body, headers=api.bearer(token))
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert field in error["field_errors"], error
    after = api.simulate_get(f"{API}/users/{user_id}", headers=api.bearer(token)).json
    assert after["email"] == "ada@example.com" and after["is_active"] is True
    assert after["profile"]["locale"] == "en"


def test_an_unexpected_database_error_is_a_500_logged_with_request_id(
    api, admin, caplog, monkeypatch
):
    _, token = admin
    db = api.services.db

    def broken_query(*args, **kwargs):
        with db.read() as s:
            s.execute(text("SELECT no_such_function_at_all()"))

    monkeypatch.setattr(api.services.roles, "list", broken_query)
    with caplog.at_level(logging.ERROR, logger="usermgmt.api"):
        result = api.simulate_get(
            f"{API}/roles", headers={**api.bearer(token), "X-Request-ID": "req-db-500-id"}
        )
    error = assert_error(result, 500, "INTERNAL_ERROR")
    assert error["message"] == "Internal server error"
    assert "no_such_function" not in result.text and "SELECT" not in result.text
    records = [r for r in caplog.records if r.name == "usermgmt.api"]
    assert records and records[0].request_id == "req-db-500-id"
    cause = records[0].exc_info[1].__cause__  # the driver's error, for whoever reads the log
    assert "no_such_function" in str(cause)
