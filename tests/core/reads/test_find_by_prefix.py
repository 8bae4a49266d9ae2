"""UserReads.find by a unique id prefix (the short ids the CLI's tables show)."""

from __future__ import annotations

import uuid

import pytest

from usermgmt.core.context import Actor
from usermgmt.core.errors import NotFound, PermissionDenied, ValidationError


class PrefixedIds:
    """Random ids that all start with ``prefix`` (8 hex digits)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def new_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.prefix + uuid.uuid4().hex[8:])


@pytest.fixture
def people(make_services, operator, ctx):
    twins = make_services(ids=PrefixedIds("abcdef01"))
    single = make_services(ids=PrefixedIds("12345678"))
    a = twins.users.create(operator, ctx, {"email": "a@example.com"})
    b = twins.users.create(operator, ctx, {"email": "b@example.com"})
    c = single.users.create(operator, ctx, {"email": "c@example.com"})
    return a, b, c


def test_a_unique_prefix_finds_the_user(services, operator, people):
    _a, _b, c = people
    reads = services.user_reads
    assert reads.find(operator, "12345678").id == c.id
    assert reads.find(operator, str(c.id)[:13]).id == c.id  # dashes count for nothing
    assert reads.find(operator, " 12345678 ").id == c.id
    assert reads.resolve_id(operator, "12345678") == str(c.id)


def test_an_ambiguous_prefix_names_the_candidates(services, operator, people):
    a, b, _c = people
    with pytest.raises(ValidationError) as caught:
        services.user_reads.find(operator, "abcdef01")
    assert sorted(caught.value.details["candidates"]) == sorted([str(a.id), str(b.id)])
    assert str(a.id) in caught.value.message
    longer = str(a.id).replace("-", "")[:16]
    assert services.user_reads.find(operator, longer).id == a.id


def test_short_or_not_hex_prefixes_are_not_ids(services, operator, people):
    for ref in ("1234567", "12345678z", "zz345678"):
        with pytest.raises(NotFound):
            services.user_reads.find(operator, ref)


def test_a_deleted_user_only_with_include_deleted(services, operator, ctx, people):
    _a, _b, c = people
    services.users.delete(operator, ctx, str(c.id))
    with pytest.raises(NotFound):
        services.user_reads.find(operator, "12345678")
    assert services.user_reads.find(operator, "12345678", include_deleted=True).id == c.id


def test_a_username_wins_over_an_id_prefix(services, operator, ctx, people):
    named = services.users.create(operator, ctx, {"email": "d@example.com", "username": "12345678"})
    assert services.user_reads.find(operator, "12345678").id == named.id


def test_a_plain_user_cannot_probe_ids_by_prefix(services, operator, people):
    _a, _b, c = people
    as_c = Actor(label=f"user:{c.id}", user_id=c.id, roles=frozenset({"user"}))
    assert services.user_reads.find(as_c, str(c.id)).id == c.id
    with pytest.raises(PermissionDenied):
        services.user_reads.find(as_c, "abcdef01")
