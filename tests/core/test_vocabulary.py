"""usermgmt.core.vocabulary: the role and status words, and everything that takes them from it."""

from __future__ import annotations

from typing import get_args

from usermgmt.core.schemas import RolesIn, UserCreate, UserOut, UserQuery
from usermgmt.core.vocabulary import (
    FILTER_STATUSES,
    ROLE_DESCRIPTIONS,
    ROLE_NAMES,
    STATUSES,
    StatusFilter,
)


def test_the_seeded_roles_are_the_vocabulary(services, operator):
    """Migration 0001 seeds its own frozen copy; it must say what the vocabulary says."""
    seeded = {role.name: role.description for role in services.roles.list(operator)}
    assert seeded == ROLE_DESCRIPTIONS
    assert list(ROLE_DESCRIPTIONS) == list(ROLE_NAMES)


def _enum(schema: dict, field: str) -> list[str]:
    prop = schema["properties"][field]
    options = prop.get("anyOf", [prop])
    for option in options:
        items = option.get("items", option)
        if "enum" in items:
            return items["enum"]
    raise AssertionError(f"{field} has no enum: {prop}")


def test_the_shapes_take_their_words_from_the_vocabulary():
    assert _enum(UserCreate.model_json_schema(), "roles") == list(ROLE_NAMES)
    assert _enum(RolesIn.model_json_schema(), "roles") == list(ROLE_NAMES)
    assert _enum(UserQuery.model_json_schema(), "role") == list(ROLE_NAMES)
    assert _enum(UserQuery.model_json_schema(), "status") == list(FILTER_STATUSES)
    out = UserOut.model_json_schema(mode="serialization")
    assert _enum(out, "status") == list(STATUSES)


def test_a_listing_filters_by_every_status_but_deleted():
    assert get_args(StatusFilter) == FILTER_STATUSES
    assert FILTER_STATUSES == ("active", "inactive", "locked", "unverified")
