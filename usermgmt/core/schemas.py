"""Pydantic models: the one definition of input validation and output shape.

Services validate every input with these; the API builds its OpenAPI document
from the same classes, so documentation and behaviour cannot drift. Write
models forbid unknown fields (mass assignment is a validation error, never
silently applied).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from usermgmt.core.errors import ValidationError
from usermgmt.core.status import status_of
from usermgmt.core.vocabulary import RoleName, StatusFilter, UserKind, UserStatus

# Characters no user text may hold: C0 and C1 controls, DEL, and the bidirectional
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that make text
# display as something else. Written as a regex class body that Python, pydantic's
# Rust engine and JSON Schema (ECMA-262) read alike, so the one pattern is both the
# check and its documentation.
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
PLAIN_TEXT = rf"^[^{_CONTROLS}]*$"
# A bio may run over several lines: line breaks (LF or CRLF) are its only controls.
MULTILINE_TEXT = rf"^(?:[^{_CONTROLS}]|\r?\n)*$"
NO_NUL = r"^[^\x00]*$"
# Not blank: one character that is neither white space (\ufeff is one in ECMA-262, not
# in Rust or Python) nor forbidden.
NOT_BLANK = rf"^[^{_CONTROLS}]*[^\s\ufeff{_CONTROLS}][^{_CONTROLS}]*$"
USERNAME = r"^[A-Za-z0-9_.-]{3,50}$"
PHONE = r"^\+?[0-9 ()./-]{3,32}$"
# An http(s) URL: no white space, no control character, no bidirectional override.
AVATAR_URL = rf"^https?://[^\s\ufeff{_CONTROLS}]+$"
LOCALE = r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$"
AUDIT_CURSOR = r"^[0-9]{1,18}$"
RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")

# What a field's pattern means, said in words (pydantic would quote the regex).
PATTERN_MESSAGES = {
    PLAIN_TEXT: "Must not contain control characters or bidirectional overrides",
    MULTILINE_TEXT: "Must not contain control characters (other than line breaks) "
    "or bidirectional overrides",
    NO_NUL: "Must not contain NUL characters",
    NOT_BLANK: "Must not be blank or contain control characters",
    USERNAME: "Username must be 3-50 characters of a-z, 0-9, '_', '.', '-'",
    PHONE: "Phone: 3-32 of digits, spaces and + ( ) . / -",
    AVATAR_URL: "Must be an http:// or https:// URL without spaces or control characters",
    LOCALE: "Must be a locale such as en or en_GB",
    AUDIT_CURSOR: "Invalid cursor (it must come from meta.next_cursor)",
}
EMAIL_MAX = 254  # RFC 5321's limit on a forward path, and email-validator's


def normalise_identifier(value: str) -> str:
    """The one form of an email (or username) that is stored and compared: NFKC, then
    case folding, so a compatible look-alike (fullwidth letters, ß for ss) is the same
    account. Idempotent; lookups by login, password reset and reference use it. (For
    the ASCII usernames allowed it is plain lower case.)"""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return folded.strip()


def _valid_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(normalise_identifier(value), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"Invalid email format: {exc}") from None
    normalised = normalise_identifier(result.normalized)
    if len(normalised) > EMAIL_MAX:
        raise ValueError(f"Email must be at most {EMAIL_MAX} characters")
    return normalised


def _strip(value: str) -> str:
    return value.strip()


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 5.0 is the integer 5 (as JSON Schema says); a string or
    a boolean is not an integer, so the field itself is strict."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _query_integer(value: Any) -> Any:
    """A query string's digits; anything else (5.0, ' 5', 'five') stays text and fails."""
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        return int(value)
    return value


def _query_bool(value: Any) -> Any:
    """``true``/``false`` as a query string spells a boolean; 'yes', '1' and 'on' do not."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


def _query_uuid(value: Any) -> Any:
    if isinstance(value, str) and not CANONICAL_UUID.match(value):
        raise ValueError("Must be a UUID (8-4-4-4-12 hexadecimal digits)")
    return value


def _query_datetime(value: Any) -> Any:
    if isinstance(value, str) and not RFC3339.match(value):
        raise ValueError("Must be an RFC 3339 date-time, such as 2025-01-31T12:00:00Z")
    return value


def _utc(value: datetime) -> datetime:
    """In UTC. A bound a few hours past the representable (0001-01-01T00:00+01:00) is
    still a valid date-time: as a filter it means "from the beginning" or "to the end"."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return (datetime.min if value.year == 1 else datetime.max).replace(tzinfo=UTC)


def _no_default_null(schema: dict[str, Any], _model: type) -> None:
    """A field typed without ``| None`` but defaulting to None may be left out and is
    never null: None only stands for "not given" (services read such models with
    ``exclude_unset``). The schema then shows no default, since null is not a value."""
    for prop in schema.get("properties", {}).values():
        if "default" in prop and prop["default"] is None and not _allows_null(prop):
            del prop["default"]


def _allows_null(prop: dict[str, Any]) -> bool:
    options = prop.get("anyOf") or prop.get("oneOf") or [prop]
    for option in options:
        kind = option.get("type")
        if kind == "null" or (isinstance(kind, list) and "null" in kind):
            return True
    return False


Email = Annotated[
    str,
    Field(max_length=EMAIL_MAX, json_schema_extra={"format": "idn-email"}),
    AfterValidator(_valid_email),
]
Username = Annotated[str, Field(max_length=50, pattern=USERNAME), AfterValidator(str.lower)]
Name = Annotated[str, Field(max_length=100, pattern=PLAIN_TEXT), AfterValidator(_strip)]
Password = Annotated[str, Field(min_length=1, max_length=1024, pattern=NO_NUL)]
Token = Annotated[str, Field(min_length=1, max_length=512, pattern=NO_NUL)]
# An email or username to look up: never stored, so not checked as one; after
# normalisation an address longer than EMAIL_MAX cannot exist.
Identifier = Annotated[str, Field(min_length=1, max_length=EMAIL_MAX, pattern=NOT_BLANK)]
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}, mode="serialization"),
]
JsonBool = Annotated[bool, Field(strict=True)]
QueryBool = Annotated[bool, BeforeValidator(_query_bool), Field(strict=True)]
QueryText = Annotated[str, Field(pattern=NO_NUL)]
QueryUuid = Annotated[uuid.UUID, BeforeValidator(_query_uuid)]
QueryDateTime = Annotated[datetime, BeforeValidator(_query_datetime), AfterValidator(_utc)]


def json_int(ge: int, le: int) -> Any:
    """An integer field of a JSON body, between ``ge`` and ``le``."""
    return Annotated[int, Field(strict=True, ge=ge, le=le), BeforeValidator(_json_integer)]


def query_int(ge: int, le: int) -> Any:
    """An integer query parameter, between ``ge`` and ``le``."""
    return Annotated[int, Field(strict=True, ge=ge, le=le), BeforeValidator(_query_integer)]


class WriteModel(BaseModel):
    # defer_build: a model's validator is built on its first use, not at import, so a
    # command (a remote one validates no input locally) pays only for what it uses.
    model_config = ConfigDict(
        extra="forbid", str_max_length=4096, json_schema_extra=_no_default_null, defer_build=True
    )

    @field_validator("*", mode="before")
    @classmethod
    def _text_is_text(cls, value: Any) -> Any:
        """No text holds a NUL (PostgreSQL cannot store one and SQLite's driver refuses
        one in a statement) or an unpaired surrogate (no database encoding has one):
        either would surface as a database error, not as bad input."""
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("Must not contain NUL characters")
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("Must be valid Unicode (no unpaired surrogates)") from None
        return value


Phone = Annotated[str, Field(max_length=32, pattern=PHONE)]
Bio = Annotated[str, Field(max_length=1000, pattern=MULTILINE_TEXT)]
AvatarUrl = Annotated[str, Field(max_length=500, pattern=AVATAR_URL)]
TimezoneName = Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN_TEXT)]
Locale = Annotated[str, Field(max_length=16, pattern=LOCALE)]


class ProfileIn(WriteModel):
    """Profile fields. timezone and locale are never null: left out, they keep their
    value (PATCH) or take the default, UTC and en (create, PUT)."""

    phone: Phone | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None
    timezone: TimezoneName = None
    locale: Locale = None


class SelfUpdate(WriteModel):
    """What a user may change about themselves: names and profile, nothing else.

    A PATCH: a field left out keeps its value; null clears only what may be empty.
    """

    first_name: Name | None = None
    last_name: Name | None = None
    profile: ProfileIn = None


class UserPatch(SelfUpdate):
    """What a moderator or admin may change (roles have their own operation)."""

    email: Email = None
    username: Username | None = None
    is_active: JsonBool = None
    email_verified: JsonBool = None


class UserReplace(WriteModel):
    """PUT: a full replacement of the editable fields; omitted optional fields are cleared."""

    email: Email
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    is_active: JsonBool = True
    email_verified: JsonBool = False
    profile: ProfileIn = Field(default_factory=ProfileIn)


class UserCreate(WriteModel):
    email: Email
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None  # none: the user is sent an invitation
    roles: list[RoleName] = Field(default_factory=lambda: ["user"], max_length=3)
    is_active: JsonBool = True
    email_verified: JsonBool = False
    profile: ProfileIn = Field(default_factory=ProfileIn)
    # A service account needs a username, takes no password and is never mailed.
    kind: UserKind = "person"


class RegisterIn(WriteModel):
    email: Email
    password: Password
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None


def _email_or_username(schema: dict[str, Any], model: type) -> None:
    _no_default_null(schema, model)
    schema["anyOf"] = [{"required": ["email"]}, {"required": ["username"]}]


class LoginIn(WriteModel):
    """``email`` or ``username`` (either may hold either), and the password."""

    model_config = ConfigDict(json_schema_extra=_email_or_username)

    email: Identifier = None
    username: Identifier = None
    password: Password

    @model_validator(mode="after")
    def _identified(self) -> LoginIn:
        if self.email is None and self.username is None:
            raise ValueError("Email or username is required")
        return self


class RefreshIn(WriteModel):
    refresh_token: Token


class LogoutIn(WriteModel):
    refresh_token: Token = None


class ChangePasswordIn(WriteModel):
    current_password: Password
    new_password: Password


class ForgotPasswordIn(WriteModel):
    email: Identifier


class ResetPasswordIn(WriteModel):
    token: Token
    new_password: Password


class VerifyEmailIn(WriteModel):
    token: Token


class RolesIn(WriteModel):
    roles: list[RoleName] = Field(max_length=3)


SortField = Literal[
    "created_at",
    "-created_at",
    "email",
    "-email",
    "username",
    "-username",
    "last_login_at",
    "-last_login_at",
    "name",
    "-name",
    "status",
    "-status",
]


class UserQuery(WriteModel):
    """Query models take a URL's strings (``limit=5``, ``include_deleted=true``) as well
    as Python values, and nothing looser than the schema says."""

    page: query_int(1, 1_000_000) = 1
    limit: query_int(1, 100) = 20
    search: Annotated[QueryText, Field(max_length=100)] | None = None
    role: RoleName | None = None
    status: StatusFilter | None = None
    include_deleted: QueryBool = False
    sort: SortField = "-created_at"
    cursor: Annotated[QueryText, Field(max_length=500)] | None = None


class AuditQuery(WriteModel):
    actor_id: QueryUuid | None = None
    # Operators (cli:<os user>, tui:<os user>) act without a user id.
    actor_label: Annotated[QueryText, Field(min_length=1, max_length=200)] | None = None
    target_id: QueryUuid | None = None
    action: Annotated[QueryText, Field(max_length=64)] | None = None
    since: QueryDateTime | None = None
    until: QueryDateTime | None = None
    limit: query_int(1, 1000) = 50
    cursor: Annotated[str, Field(pattern=AUDIT_CURSOR)] | None = None
    # newest: seq descending, cursor = the seq below which to go on; oldest: ascending, above.
    order: Literal["newest", "oldest"] = "newest"


# ---- output ---------------------------------------------------------------


class ProfileOut(BaseModel):
    phone: str | None = None
    bio: str | None = None
    avatar_url: str | None = None
    timezone: str = "UTC"
    locale: str = "en"


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    username: str | None
    kind: UserKind
    first_name: str | None
    last_name: str | None
    roles: list[str]
    mfa_enabled: bool
    # What the user's state adds up to when read (usermgmt.core.status).
    status: UserStatus
    is_active: bool
    email_verified: bool
    locked_until: Timestamp | None
    last_login_at: Timestamp | None
    profile: ProfileOut
    created_at: Timestamp
    updated_at: Timestamp
    deleted_at: Timestamp | None


class TokensOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class AuthResult(BaseModel):
    user: UserOut
    tokens: TokensOut
    # True: the role policy (USERMGMT_MFA_REQUIRED_ROLES) holds this session back until
    # the user enrols a second factor (POST /auth/mfa/totp/setup, then confirm).
    mfa_enrolment_required: bool = False


class RefreshResult(BaseModel):
    tokens: TokensOut


class PageMeta(BaseModel):
    total: int
    page: int | None
    limit: int
    total_pages: int
    next_cursor: str | None


class UserPage(BaseModel):
    data: list[UserOut]
    meta: PageMeta


class UserRows(BaseModel):
    """A page of users without a total (``UserReads.list_rows``)."""

    data: list[UserOut]
    next_cursor: str | None


class SessionOut(BaseModel):
    id: uuid.UUID
    created_at: Timestamp
    expires_at: Timestamp
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None
    ip: str | None
    user_agent: str | None


class SessionList(BaseModel):
    data: list[SessionOut]


class AuditEventOut(BaseModel):
    id: uuid.UUID
    seq: int
    at: Timestamp
    action: str
    actor_id: uuid.UUID | None
    actor_label: str
    target_id: uuid.UUID | None
    ip: str | None
    request_id: str | None
    changes: dict[str, Any]
    prev_hash: str
    hash: str


class AuditMeta(BaseModel):
    limit: int
    next_cursor: str | None


class AuditPage(BaseModel):
    data: list[AuditEventOut]
    meta: AuditMeta


class RoleOut(BaseModel):
    name: str
    description: str


class RoleList(BaseModel):
    data: list[RoleOut]


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Mapping[str, Any] | M | None) -> M:
    """Validate input into ``model``; pydantic errors become one domain ValidationError."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(dict(data or {}))
    except PydanticValidationError as exc:
        raise validation_error_from(exc) from None


def validation_error_from(exc: PydanticValidationError) -> ValidationError:
    field_errors: dict[str, list[str]] = {}
    # Inputs are read only to tell null apart; they never reach a message (secrets).
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "Unknown or forbidden field"
        elif err["type"] == "string_pattern_mismatch":
            msg = PATTERN_MESSAGES.get(err["ctx"]["pattern"], msg)
        elif err["type"].endswith("_type") and err.get("input", "") is None:
            msg = "Must not be null (leave the field out to keep its value)"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        field_errors.setdefault(loc, []).append(msg)
    summary = "; ".join(f"{k}: {v[0]}" for k, v in field_errors.items())
    return ValidationError(f"Invalid input ({summary})", field_errors=field_errors)


def user_out(user: Any, now: datetime) -> UserOut:
    """The representation of a User (or of a row with its columns, roles and profile);
    its status is the one at ``now``."""
    profile = user.profile
    email_verified = user.email_verified_at is not None
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        kind=user.kind,
        first_name=user.first_name,
        last_name=user.last_name,
        roles=user.roles,
        mfa_enabled=user.mfa_enabled,
        status=status_of(
            deleted_at=user.deleted_at,
            is_active=user.is_active,
            locked_until=user.locked_until,
            email_verified=email_verified,
            now=now,
        ),
        is_active=user.is_active,
        email_verified=email_verified,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
        profile=ProfileOut(
            phone=profile.phone,
            bio=profile.bio,
            avatar_url=profile.avatar_url,
            timezone=profile.timezone,
            locale=profile.locale,
        )
        if profile
        else ProfileOut(),
        created_at=user.created_at,
        updated_at=user.updated_at,
        deleted_at=user.deleted_at,
    )
