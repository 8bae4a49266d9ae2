"""Values a client sends back (cursors, times, ids, tokens): a bad one is a 400 or 404,
never a 500 or a 503 that blames the database."""

from __future__ import annotations

import base64
import json
import typing

import pytest

from usermgmt.core.schemas import SortField

from .api_helpers import API, assert_error

SORTS = typing.get_args(SortField)
SOME_ID = "0b6f2a4e-8c1d-4f7e-9a3b-5d2c1e0f4a6b"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_of(obj: object) -> str:
    return _b64(json.dumps(obj).encode())


def raw_cursor(text: str) -> str:
    """A cursor of hand-written JSON (lone surrogate escapes, NaN …); ID is SOME_ID."""
    return _b64(text.replace("ID", SOME_ID).encode())


def edited(sort: str, value: object, user_id: object = SOME_ID) -> str:
    return cursor_of({"s": sort, "v": value, "i": user_id})


WRONG_TYPES = {  # per sort key: values of a type its column cannot hold
    "created_at": [5, 10**30, 1.5, True, [], {}, None, "yesterday", "2024-05-01T12:00:00"],
    "last_login_at": [5, 10**30, True, [], "2024-05-01", "x" * 41],
    "email": [5, 10**30, 1.5, False, ["a"], {"a": 1}, None, "x" * 256],
    "username": [5, 10**30, True, ["a"], "x" * 51],
    "name": [5, 10**30, True, ["a"], None, "x" * 202],
    "status": [5, True, {"a": 1}, None, "x" * 11],
}

HOSTILE_CURSORS = [
    *(
        pytest.param(sort, edited(sort, value), id=f"{sort}={value!r:.20}")
        for sort in SORTS
        for value in WRONG_TYPES[sort.lstrip("-")]
    ),
    # Times that leave the calendar when moved to UTC.
    pytest.param("created_at", edited("created_at", "9999-12-31T23:59:59-14:00"), id="year-10000"),
    pytest.param("-created_at", edited("-created_at", "0001-01-01T00:00:00+14:00"), id="year-0"),
    # Text no driver can send: a lone surrogate, a NUL.
    pytest.param("email", raw_cursor('{"s":"email","v":"\\ud800","i":"ID"}'), id="surrogate"),
    pytest.param("username", raw_cursor('{"s":"username","v":"\\udfff","i":"ID"}'), id="low-sur"),
    pytest.param("email", edited("email", "a\x00b"), id="nul"),
    pytest.param("username", edited("username", "a\x00"), id="nul-username"),
    # The id.
    pytest.param("email", edited("email", "a@example.com", 5), id="id-int"),
    pytest.param("email", edited("email", "a@example.com", 10**30), id="id-huge"),
    pytest.param("email", edited("email", "a@example.com", None), id="id-null"),
    pytest.param("email", edited("email", "a@example.com", "not-a-uuid"), id="id-text"),
    pytest.param("email", raw_cursor('{"s":"email","v":"a","i":"\\ud800"}'), id="id-surrogate"),
    # The envelope.
    pytest.param("email", "!!!***", id="not-base64"),
    pytest.param("email", "a", id="bad-padding"),
    pytest.param("email", "Zm9v€", id="non-ascii"),
    pytest.param("email", _b64(b"hello, world"), id="not-json"),
    pytest.param("email", _b64(b"\xff\xfe\x00"), id="not-utf8"),
    pytest.param("email", cursor_of(["email", "a", SOME_ID]), id="array"),
    pytest.param("email", cursor_of("email"), id="string"),
    pytest.param("email", cursor_of(10**30), id="number"),
    pytest.param("email", cursor_of({"s": "email", "v": "a"}), id="no-id"),
    pytest.param(
        "email", cursor_of({"s": "email", "v": "a", "i": SOME_ID, "x": 1}), id="extra-key"
    ),
    pytest.param("email", edited("-email", "a@example.com"), id="other-sort"),
    pytest.param("email", edited(["email"], "a@example.com"), id="sort-not-text"),
    pytest.param("email", raw_cursor('{"s":"email","v":NaN,"i":"ID"}'), id="nan"),
    pytest.param("created_at", raw_cursor('{"s":"created_at","v":1e400,"i":"ID"}'), id="inf"),
    pytest.param("email", raw_cursor("[" * 300 + "]" * 300), id="deep"),
]


@pytest.mark.parametrize(("sort", "cursor"), HOSTILE_CURSORS)
def test_an_edited_user_cursor_is_a_400(api, admin, sort, cursor):
    _, token = admin
    result = api.simulate_get(
        f"{API}/users", headers=api.bearer(token), params={"sort": sort, "cursor": cursor}
    )
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert list(error["field_errors"]) == ["cursor"]


@pytest.mark.parametrize(
    "cursor",
    ["-1", "x", "1.5", "9" * 19, "9" * 30, str(2**63), "\u0663", "\u00b2", "1 ", "0x10"],
)
def test_an_edited_audit_cursor_is_a_400(api, admin, cursor):
    _, token = admin
    result = api.simulate_get(f"{API}/audit", headers=api.bearer(token), params={"cursor": cursor})
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert list(error["field_errors"]) == ["cursor"]


def test_the_largest_audit_cursor_is_read(api, admin):
    _, token = admin
    result = api.simulate_get(
        f"{API}/audit", headers=api.bearer(token), params={"cursor": "9" * 18}
    )
    assert result.status_code == 200, result.text
    assert result.json["data"]  # every event is below it


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("since", "10000-01-01T00:00:00Z"),
        ("since", "1e20"),
        ("until", "2024-13-01"),
        ("until", "2024-12-01"),  # a date is not a date-time
        ("since", "9999-12-31T23:59:59"),  # nor is a time without its zone
    ],
)
def test_times_that_are_no_rfc3339_date_time_are_a_400(api, admin, name, value):
    _, token = admin
    result = api.simulate_get(f"{API}/audit", headers=api.bearer(token), params={name: value})
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert list(error["field_errors"]) == [name]


def test_date_times_past_the_calendar_in_utc_are_open_bounds(api, admin):
    """Valid RFC 3339 date-times that leave the calendar once moved to UTC (so the
    OpenAPI's date-time format admits them): the range they bound is open at that end."""
    _, token = admin
    auth = api.bearer(token)
    everything = api.simulate_get(
        f"{API}/audit", headers=auth, params={"until": "9999-12-31T23:59:59-14:00"}
    )
    assert everything.status_code == 200 and everything.json["data"]
    for params in (
        {"since": "9999-12-31T23:59:59-14:00"},
        {"until": "0001-01-01T00:00:00+14:00"},
    ):
        nothing = api.simulate_get(f"{API}/audit", headers=auth, params=params)
        assert nothing.status_code == 200, nothing.text
        assert nothing.json["data"] == []


@pytest.mark.parametrize(
    "params",
    [{"page": "9" * 30}, {"page": "0"}, {"limit": "1e3"}, {"page": "\u0663"}, {"limit": "-1"}],
)
def test_page_numbers_are_bounded(api, admin, params):
    _, token = admin
    result = api.simulate_get(f"{API}/users", headers=api.bearer(token), params=params)
    assert_error(result, 400, "VALIDATION_ERROR")


@pytest.mark.parametrize("user_id", ["9" * 40, "%ED%A0%80", "a%00b", "\u0663", SOME_ID, "%1B%5B2J"])
def test_an_id_in_a_path_that_is_no_user_is_a_404(api, admin, user_id):
    _, token = admin
    result = api.simulate_get(f"{API}/users/{user_id}", headers=api.bearer(token))
    assert_error(result, 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/auth/refresh", "refresh_token"),
        ("/auth/verify-email", "token"),
        ("/auth/logout", "refresh_token"),
        ("/auth/reset-password", "token"),
    ],
)
@pytest.mark.parametrize(
    "token", ["\\ud800", "\\udfff", "a\\u0000b", "x" * 600], ids=["high", "low", "nul", "long"]
)
def test_hostile_tokens_are_a_400(api, admin, path, field, token):
    _, access = admin
    extra = ', "new_password": "Corr3ct-Horse-Battery"' if path.endswith("reset-password") else ""
    body = f'{{"{field}": "{token}"{extra}}}'
    result = api.simulate_post(
        f"{API}{path}",
        body=body,
        headers={"Content-Type": "application/json", **api.bearer(access)},
    )
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert list(error["field_errors"]) == [field]


def test_a_hostile_request_id_is_replaced(api):
    for value in ("\x1b[2J", "a" * 1000, "x\ty"):
        result = api.simulate_get("/health", headers={"X-Request-ID": value})
        assert result.status_code == 200
        assert result.headers["X-Request-ID"] != value
        assert result.headers["X-Request-ID"].isprintable()


def test_every_genuine_cursor_is_read_back(api, admin, operator, ctx):
    """Cursors of every sort, over keys that are NULL (no username, never logged in)
    and keys that are not: the checks refuse none of what the server hands out."""
    services = api.services
    for i in range(4):
        extra = {"username": f"name{i}"} if i % 2 else {}
        services.users.create(operator, ctx, {"email": f"p{i}@example.com", **extra})
    _, token = admin
    auth = api.bearer(token)
    for sort in SORTS:
        by_offset = api.simulate_get(f"{API}/users", headers=auth, params={"sort": sort})
        expected = [u["id"] for u in by_offset.json["data"]]
        seen, cursor = [], None
        while True:
            params = {"sort": sort, "limit": 1, **({"cursor": cursor} if cursor else {})}
            page = api.simulate_get(f"{API}/users", headers=auth, params=params)
            assert page.status_code == 200, (sort, page.text)
            seen += [u["id"] for u in page.json["data"]]
            cursor = page.json["meta"]["next_cursor"]
            if cursor is None:
                break
        assert seen == expected, sort
