"""Every writable field of every write model against the column it writes.

Length, nullability, type and format must agree both ways, so the pydantic models
(and the OpenAPI document built from them) say exactly what the database takes.
The mapping below is explicit: a new write model, or a new field of one, fails
here until it names its column (or says why it has none).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import Column, String

import usermgmt
from usermgmt.api import remote_schemas as remote
from usermgmt.api import schemas as api
from usermgmt.api import webhooks as api_webhooks
from usermgmt.core import key_schemas as keys
from usermgmt.core import mfa_schemas as mfa
from usermgmt.core import schemas as core
from usermgmt.core.models import ApiKey, Profile, User, UserRole, WebhookSubscription
from usermgmt.core.schemas import EMAIL_MAX, WriteModel
from usermgmt.core.services.transfer import ImportRow
from usermgmt.core.webhooks import service as webhooks


@dataclass(frozen=True)
class Col:
    """The column a field writes, and any deliberate difference, with its reason."""

    column: Any
    max_length: int | None = None  # narrower than the column's
    nullable: bool | None = None  # None: as the column
    why: str = ""


@dataclass(frozen=True)
class NoColumn:
    why: str


EMAIL = Col(User.email, max_length=EMAIL_MAX, why="RFC 5321's 254 in a 255 column")
PASSWORD = NoColumn("hashed into users.password_hash")
NAMES = {"first_name": Col(User.first_name), "last_name": Col(User.last_name)}
PROFILE = {
    "phone": Col(Profile.phone),
    "bio": Col(Profile.bio),
    "avatar_url": Col(Profile.avatar_url),
    "timezone": Col(Profile.timezone),
    "locale": Col(Profile.locale),
}
ACCOUNT = {
    "email": EMAIL,
    "username": Col(User.username),
    **NAMES,
    "is_active": Col(User.is_active),
    "email_verified": NoColumn("sets users.email_verified_at to now, or clears it"),
    "profile": NoColumn("a ProfileIn, compared on its own"),
}

COLUMNS: dict[type[BaseModel], dict[str, Col | NoColumn]] = {
    core.ProfileIn: PROFILE,
    core.SelfUpdate: {**NAMES, "profile": ACCOUNT["profile"]},
    core.UserPatch: ACCOUNT,
    core.UserReplace: ACCOUNT,
    core.UserCreate: {
        **ACCOUNT,
        "password": PASSWORD,
        "roles": Col(UserRole.role_name, why="one user_roles row per role"),
        "kind": Col(User.kind),
    },
    keys.ApiKeyCreate: {
        "name": Col(ApiKey.name),
        "scopes": NoColumn("scope words, stored as the JSON list api_keys.scopes"),
        "expires_in_days": NoColumn("days from now, stored as api_keys.expires_at"),
        "user_id": NoColumn("an existing user's id, stored as api_keys.user_id"),
    },
    core.RegisterIn: {
        "email": EMAIL,
        "username": Col(User.username),
        **NAMES,
        "password": PASSWORD,
    },
    ImportRow: {
        **{k: v for k, v in ACCOUNT.items() if k != "profile"},
        **PROFILE,
        "timezone": Col(Profile.timezone, nullable=True, why="an empty cell takes UTC"),
        "locale": Col(Profile.locale, nullable=True, why="an empty cell takes en"),
        "roles": NoColumn("role names, checked against the roles (a list, or ';'-separated)"),
        "password": PASSWORD,
        "password_hash": NoColumn("checked as a bcrypt hash, 60 characters"),
    },
    webhooks.WebhookIn: {
        "url": Col(WebhookSubscription.url),
        "events": NoColumn("event type names, stored as one JSON list"),
        "description": Col(WebhookSubscription.description),
    },
    webhooks.WebhookPatch: {
        "url": Col(WebhookSubscription.url),
        "events": NoColumn("event type names, stored as one JSON list"),
        "description": Col(WebhookSubscription.description),
        "enabled": Col(WebhookSubscription.enabled),
    },
}
# Write models whose fields are not stored as given: lookups, secrets, filters.
NO_COLUMNS: dict[type[BaseModel], str] = {
    core.LoginIn: "an identifier to look up and a password to check",
    core.RefreshIn: "a token to look up by its digest",
    core.LogoutIn: "a token to look up by its digest",
    core.ChangePasswordIn: "passwords, hashed",
    core.ForgotPasswordIn: "an email to look up",
    core.ResetPasswordIn: "a token to look up, a password to hash",
    core.VerifyEmailIn: "a token to look up",
    core.RolesIn: "role names, one user_roles row each (enum values checked below)",
    core.UserQuery: "a listing's filters",
    core.AuditQuery: "the audit log's filters",
    api.LockIn: "minutes from now, stored as users.locked_until",
    api.UserGetQuery: "a filter",
    api.NoQuery: "no fields",
    keys.ApiKeyQuery: "a listing's filters",
    remote.ResolveQuery: "a reference to look up",
    remote.ImportQuery: "an import's options (its rows are ImportRow)",
    remote.ExportQuery: "an export's options",
    remote.VerifyIn: "a head to compare",
    remote.PurgeQuery: "a flag",
    remote.MailQuery: "a listing's filters",
    remote.DeliverQuery: "a count",
    remote.SetPasswordIn: "a password, hashed",
    mfa.MfaVerifyIn: "a challenge to look up by its digest, codes to check",
    mfa.MfaCodeIn: "a code to check",
    mfa.MfaDisableIn: "a password and a code to check",
    webhooks.ReplayIn: "a time that selects deliveries",
    api_webhooks.DeliveryQuery: "a listing's filters",
}


def _all_write_models() -> set[type[BaseModel]]:
    """Every WriteModel subclass in the package: each module that names WriteModel is
    imported, so a model in a new module is found too."""
    root = Path(usermgmt.__file__).parent
    for path in root.rglob("*.py"):
        if path.name != "__main__.py" and "WriteModel" in path.read_text(encoding="utf-8"):
            module = ".".join(("usermgmt", *path.relative_to(root).with_suffix("").parts))
            importlib.import_module(module.removesuffix(".__init__"))
    found, todo = set(), [WriteModel]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("usermgmt.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_write_model_is_mapped():
    assert _all_write_models() == set(COLUMNS) | set(NO_COLUMNS)
    assert not set(COLUMNS) & set(NO_COLUMNS)


@pytest.mark.parametrize("model", list(COLUMNS), ids=lambda m: m.__name__)
def test_every_field_names_its_column(model):
    assert set(model.model_fields) == set(COLUMNS[model])


def _nullable_and_schema(prop: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    options = prop.get("anyOf", [prop])
    rest = [o for o in options if o.get("type") != "null"]
    assert len(rest) == 1, prop
    return len(rest) < len(options), rest[0]


JSON_TYPES = {str: "string", bool: "boolean", int: "integer"}

FIELDS = [
    (model, name, spec)
    for model, fields in COLUMNS.items()
    for name, spec in fields.items()
    if isinstance(spec, Col)
]


@pytest.mark.parametrize(
    ("model", "name", "spec"), FIELDS, ids=[f"{m.__name__}.{n}" for m, n, _ in FIELDS]
)
def test_field_agrees_with_its_column(model, name, spec):
    column: Column = spec.column.property.columns[0]
    prop = model.model_json_schema()["properties"][name]
    if column.table.name == "user_roles":  # a list of role names
        assert prop["type"] == "array"
        prop = prop["items"]
    nullable, schema = _nullable_and_schema(prop)
    expected_null = column.nullable if spec.nullable is None else spec.nullable
    assert nullable == expected_null, f"{name}: null allowed {nullable}, column {column.nullable}"
    assert schema.get("type") == JSON_TYPES[column.type.python_type]
    if isinstance(column.type, String):
        if "enum" in schema:
            assert max(len(v) for v in schema["enum"]) <= column.type.length
        else:
            limit = spec.max_length or column.type.length
            assert schema.get("maxLength") == limit, f"{name}: {schema.get('maxLength')} != {limit}"
            assert limit <= column.type.length
    assert schema.get("format") == column.info.get("format"), name


def test_the_comparison_notices_drift():
    """Against a model that drifted (length, format, nullability), the comparison fails."""

    class Drifted(WriteModel):
        email: str  # the models' default length, no format
        locale: core.Locale | None = None  # nullable over a non-null column

    for name, spec in (("email", EMAIL), ("locale", Col(Profile.locale))):
        with pytest.raises(AssertionError):
            test_field_agrees_with_its_column(Drifted, name, spec)
