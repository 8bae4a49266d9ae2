"""Users kept as the API sent them: the same dump as the model, the model's fields."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from usermgmt.client.wire import WireUser, WireUserPage
from usermgmt.core.schemas import UserOut

NOW = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def user_body(**changes) -> dict:
    user = UserOut(
        id=uuid.uuid4(), email="ann@example.com", username="ann", kind="person",
        first_name="Ann", last_name=None, roles=["user"], status="active", is_active=True,
        email_verified=True, mfa_enabled=False, locked_until=None, last_login_at=NOW,
        profile={"phone": None, "bio": "two\nlines"}, created_at=NOW, updated_at=NOW,
        deleted_at=None,
    )  # fmt: skip
    return {**user.model_dump(mode="json"), **changes}


def test_the_json_dump_is_the_body_and_the_models_own():
    body = user_body()
    wire = WireUser(body)
    dumped = wire.model_dump(mode="json")
    assert dumped == body == UserOut.model_validate(body).model_dump(mode="json")
    dumped["profile"]["bio"] = "changed"  # a fresh copy each time, as pydantic's
    assert wire.model_dump(mode="json")["profile"]["bio"] == "two\nlines"


def test_fields_are_the_validated_models():
    body = user_body()
    wire = WireUser(body)
    assert wire.id == uuid.UUID(body["id"])
    assert wire.last_login_at == NOW
    assert wire.profile.timezone == "UTC"
    assert wire.model_dump() == UserOut.model_validate(body).model_dump()
    assert wire == UserOut.model_validate(body) and wire == WireUser(dict(body))


def test_a_malformed_user_fails_when_it_is_read():
    wire = WireUser(user_body(created_at="yesterday"))
    with pytest.raises(ValidationError):
        _ = wire.email


def test_a_page_keeps_its_meta_and_its_users():
    body = user_body()
    meta = {"total": 3, "page": None, "limit": 1, "total_pages": 3, "next_cursor": "abc"}
    page = WireUserPage({"data": [body], "meta": meta})
    assert (page.meta.total, page.meta.next_cursor, page.meta.page) == (3, "abc", None)
    assert [u.model_dump(mode="json") for u in page.data] == [body]
