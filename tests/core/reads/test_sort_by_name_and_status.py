"""Listing users by name and by status (the console sorts by every column it shows),
on both databases: every page by keyset, by offset and backwards agrees with the
order (key, id), and a cursor of another order is refused."""

from __future__ import annotations

import pytest

from usermgmt.core import errors
from usermgmt.core.status import status_at

from ..helpers import make_user

NAMES = [
    ("ada", "Lovelace"),
    ("Ada", "Byron"),  # the same first name, another case: ordered by the last name
    (None, "Zed"),
    ("Zoë", None),
    ("ada", "Lovelace"),  # a tie: ordered by id
    (None, None),
    ("bob", "Marley"),
]


@pytest.fixture
def people(services, operator, ctx):
    users = []
    for i, (first, last) in enumerate(NAMES):
        extra = {"first_name": first, "last_name": last}
        users.append(make_user(services, operator, ctx, f"p{i}@example.com", **extra))
    services.users.lock(operator, ctx, str(users[0].id))
    services.users.update(operator, ctx, str(users[1].id), {"is_active": False})
    services.users.update(operator, ctx, str(users[2].id), {"email_verified": True})
    services.users.delete(operator, ctx, str(users[3].id))
    return users


def name_key(user) -> str:
    return f"{user.first_name or ''} {user.last_name or ''}".lower()


def walk(services, operator, query, limit=2) -> list:
    rows, cursor = [], None
    while True:
        q = {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = services.user_reads.list_rows(operator, q)
        rows += page.data
        cursor = page.next_cursor
        if cursor is None:
            return rows


@pytest.mark.parametrize("key", ["name", "status"])
@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("include_deleted", [False, True])
def test_every_page_follows_the_order(services, operator, people, key, descending, include_deleted):
    now = services.clock.now()
    now_ = [services.user_reads.get(operator, str(u.id), include_deleted=True) for u in people]
    listed = [u for u in now_ if include_deleted or u.deleted_at is None]
    by = (lambda u: name_key(u)) if key == "name" else (lambda u: status_at(u, now))
    expected = [u.id for u in sorted(listed, key=lambda u: (by(u), u.id), reverse=descending)]
    sort = f"-{key}" if descending else key
    query = {"sort": sort, "include_deleted": include_deleted}

    assert [u.id for u in walk(services, operator, query)] == expected
    assert [u.id for u in services.user_reads.list(operator, {**query, "limit": 100}).data] == (
        expected
    )
    for skip in range(len(expected)):  # offsets (the console's jumps)
        page = services.user_reads.list_rows(operator, {**query, "limit": 1}, skip=skip)
        assert [u.id for u in page.data] == expected[skip : skip + 1]


def test_a_name_cursor_is_not_a_status_cursor(services, operator, people):
    page = services.user_reads.list_rows(operator, {"sort": "name", "limit": 1})
    with pytest.raises(errors.ValidationError):
        services.user_reads.list_rows(operator, {"sort": "status", "cursor": page.next_cursor})
    assert services.user_reads.list_rows(operator, {"sort": "name", "cursor": page.next_cursor})
