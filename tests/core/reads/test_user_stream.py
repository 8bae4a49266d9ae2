"""UserReads.stream: every matching user, in order, without counting."""

import pytest

from usermgmt.core.context import Actor
from usermgmt.core.errors import PermissionDenied, ValidationError


def test_stream_yields_every_user_in_the_list_order(services, operator, ctx):
    rows = ((i + 1, {"email": f"s{i:03d}@example.com"}) for i in range(25))
    services.transfer.import_users(operator, ctx, rows)
    streamed = [u.email for u in services.user_reads.stream(operator, {"sort": "email"}, batch=7)]
    assert streamed == [f"s{i:03d}@example.com" for i in range(25)]
    first = services.user_reads.list(operator, {"sort": "email", "limit": 10})
    rest = services.user_reads.stream(operator, {"sort": "email", "cursor": first.meta.next_cursor})
    assert [u.email for u in first.data] + [u.email for u in rest] == streamed
    found = sorted(u.email for u in services.user_reads.stream(operator, {"search": "s02"}))
    assert found == [f"s02{i}@example.com" for i in range(5)]


def test_stream_checks_before_the_first_user(services):
    with pytest.raises(PermissionDenied):
        services.user_reads.stream(Actor(label="nobody"))
    with pytest.raises(ValidationError):
        services.user_reads.stream(Actor.operator("cli"), {"cursor": "garbage"})
