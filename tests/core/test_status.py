"""usermgmt.core.status: one rule for the word every face shows and the SQL that filters by it."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from usermgmt.core.clock import ManualClock
from usermgmt.core.models import Profile, User
from usermgmt.core.schemas import UserOut
from usermgmt.core.status import PRECEDENCE, status_at, status_of, where_status
from usermgmt.core.vocabulary import STATUSES

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
BEFORE, LATER = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({}, "active"),
        ({"email_verified": False}, "unverified"),
        ({"locked_until": LATER, "email_verified": False}, "locked"),
        ({"locked_until": BEFORE, "email_verified": False}, "unverified"),
        ({"locked_until": NOW}, "active"),  # a lock ends at its time
        ({"is_active": False, "locked_until": LATER, "email_verified": False}, "inactive"),
        ({"deleted_at": BEFORE, "is_active": False, "locked_until": LATER}, "deleted"),
    ],
)
def test_the_first_condition_that_holds_names_the_status(state, expected):
    given = {"deleted_at": None, "is_active": True, "locked_until": None, "email_verified": True}
    assert status_of(**{**given, **state}, now=NOW) == expected


def test_every_status_is_in_the_vocabulary_and_active_is_what_is_left():
    assert set(PRECEDENCE) | {"active"} == set(STATUSES)


# Every combination of the four conditions, with a lock over and a lock to come.
STATES = list(
    itertools.product((None, BEFORE), (True, False), (None, BEFORE, LATER), (None, BEFORE))
)


def _store_every_state(services) -> dict[uuid.UUID, str]:
    """One user per state; their status by the Python rule."""
    expected = {}
    with services.db.write() as s:
        for n, (deleted_at, is_active, locked_until, verified_at) in enumerate(STATES):
            user = User(
                id=uuid.uuid4(),
                created_at=NOW,
                updated_at=NOW,
                email=f"s{n}@example.com",
                is_active=is_active,
                locked_until=locked_until,
                email_verified_at=verified_at,
                deleted_at=deleted_at,
            )
            user.profile = Profile()
            s.add(user)
            s.flush()
            expected[user.id] = status_of(
                deleted_at=deleted_at,
                is_active=is_active,
                locked_until=locked_until,
                email_verified=verified_at is not None,
                now=NOW,
            )
    return expected


def test_the_sql_filter_holds_exactly_the_users_with_that_status(services):
    expected = _store_every_state(services)
    assert set(expected.values()) == set(STATUSES)  # every status is exercised
    with services.db.read() as s:
        for status in STATUSES:
            found = set(s.scalars(select(User.id).where(where_status(status, User, NOW))))
            assert found == {uid for uid, word in expected.items() if word == status}, status


def test_the_representation_and_the_model_say_the_same(make_services, operator):
    services = make_services(clock=ManualClock(NOW))
    expected = _store_every_state(services)
    for uid, word_at_now in expected.items():
        user = services.user_reads.get(operator, str(uid), include_deleted=True)
        assert user.status == status_at(user, NOW) == word_at_now  # read at the clock's NOW
        with services.db.read() as s:
            assert s.get(User, uid).status(NOW) == word_at_now


def test_user_out_carries_the_status_when_read(make_services, clock, operator, ctx):
    services = make_services(clock=clock)
    user = services.users.create(operator, ctx, {"email": "w@example.com"})
    assert user.status == "unverified"
    verified = services.users.update(operator, ctx, str(user.id), {"email_verified": True})
    assert verified.status == "active"
    locked = services.users.lock(operator, ctx, str(user.id), minutes=5)
    assert locked.status == "locked"
    assert status_at(locked, clock.now() + timedelta(minutes=10)) == "active"
    clock.advance(minutes=5)  # the lock ends at its time: read then, the user is active
    assert services.user_reads.get(operator, str(user.id)).status == "active"
    assert services.user_reads.list(operator, {"status": "locked"}).meta.total == 0
    assert "status" in UserOut.model_json_schema()["required"]


def test_a_listing_filtered_by_status_holds_the_users_shown_with_it(services, operator):
    _store_every_state(services)
    everyone = services.user_reads.list(operator, {"include_deleted": True, "limit": 100}).data
    for status in ("active", "inactive", "locked", "unverified"):
        for include_deleted in (False, True):
            query = {"status": status, "include_deleted": include_deleted, "limit": 100}
            listed = services.user_reads.list(operator, query)
            expected = {u.id for u in everyone if u.status == status}
            assert {u.id for u in listed.data} == expected, (status, include_deleted)
            assert listed.meta.total == len(expected)
            assert services.user_reads.count(operator, query) == len(expected)
