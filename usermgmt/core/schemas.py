"""Pydantic models: the one definition of input validation and output shape.

Services validate every input with these; the API builds its OpenAPI document
from the same classes, so documentation and behaviour cannot drift. Write
models forbid unknown fields (mass assignment is a validation error, never
silently applied).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic import ValidationError as PydanticValidationError

from usermgmt.core.errors import ValidationError

USERNAME_RE = re.compile(r"^[a-z0-9_.-]{3,50}$")
ROLE_NAMES = ("user", "moderator", "admin")


def _normalise_email(value: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    value = value.strip()
    if len(value) > 255:
        raise ValueError("Email must be at most 255 characters")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"Invalid email format: {exc}") from None
    return result.normalized.lower()


def _normalise_username(value: str) -> str:
    value = value.strip().lower()
    if not USERNAME_RE.match(value):
        raise ValueError("Username must be 3-50 characters of a-z, 0-9, '_', '.', '-'")
    return value


def _strip(value: str) -> str:
    return value.strip()


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


Email = Annotated[str, Field(max_length=320), AfterValidator(_normalise_email)]
Username = Annotated[str, Field(max_length=50), AfterValidator(_normalise_username)]
Name = Annotated[str, Field(max_length=100), AfterValidator(_strip)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
RoleName = Literal["user", "moderator", "admin"]
Timestamp = Annotated[datetime, PlainSerializer(_iso, return_type=str)]


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4096)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """No text holds a NUL: PostgreSQL cannot store one and SQLite's driver refuses
        one in a statement, so it would surface as a database error, not bad input."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("Must not contain NUL characters")
        return value


Phone = Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 ()./-]{3,32}$")]
Bio = Annotated[str, Field(max_length=1000)]
AvatarUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://\S+$")]
TimezoneName = Annotated[str, Field(min_length=1, max_length=64)]
Locale = Annotated[str, Field(pattern=r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})*$")]


class ProfileIn(WriteModel):
    phone: Phone | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None
    timezone: TimezoneName | None = None
    locale: Locale | None = None


class SelfUpdate(WriteModel):
    """What a user may change about themselves: names and profile, nothing else."""

    first_name: Name | None = None
    last_name: Name | None = None
    profile: ProfileIn | None = None


class UserPatch(SelfUpdate):
    """What a moderator or admin may change (roles have their own operation)."""

    email: Email | None = None
    username: Username | None = None
    is_active: bool | None = None
    email_verified: bool | None = None


class UserReplace(WriteModel):
    """PUT: a full replacement of the editable fields; omitted optional fields are cleared."""

    email: Email
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    is_active: bool = True
    email_verified: bool = False
    profile: ProfileIn = Field(default_factory=ProfileIn)


class UserCreate(WriteModel):
    email: Email
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    password: Password | None = None
    roles: list[RoleName] = Field(default_factory=lambda: ["user"], max_length=3)
    is_active: bool = True
    email_verified: bool = False
    profile: ProfileIn | None = None


class RegisterIn(WriteModel):
    email: Email
    password: Password
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None


class LoginIn(WriteModel):
    email: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    username: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    password: Password


class RefreshIn(WriteModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)]


class LogoutIn(WriteModel):
    refresh_token: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class ChangePasswordIn(WriteModel):
    current_password: Password
    new_password: Password


class ForgotPasswordIn(WriteModel):
    email: Annotated[str, Field(min_length=1, max_length=320)]


class ResetPasswordIn(WriteModel):
    token: Annotated[str, Field(min_length=1, max_length=512)]
    new_password: Password


class VerifyEmailIn(WriteModel):
    token: Annotated[str, Field(min_length=1, max_length=512)]


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
]
Status = Literal["active", "inactive", "locked", "unverified"]


class UserQuery(WriteModel):
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    search: Annotated[str, Field(max_length=100)] | None = None
    role: RoleName | None = None
    status: Status | None = None
    include_deleted: bool = False
    sort: SortField = "-created_at"
    cursor: Annotated[str, Field(max_length=500)] | None = None


class AuditQuery(WriteModel):
    actor_id: uuid.UUID | None = None
    # Operators (cli:<os user>, tui:<os user>) act without a user id.
    actor_label: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    target_id: uuid.UUID | None = None
    action: Annotated[str, Field(max_length=64)] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 50
    cursor: Annotated[str, Field(max_length=100)] | None = None


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
    first_name: str | None
    last_name: str | None
    roles: list[str]
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
    """A page of users without a total (``UserService.list_rows``)."""

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
    for err in exc.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "body"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "Unknown or forbidden field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        field_errors.setdefault(loc, []).append(msg)
    summary = "; ".join(f"{k}: {v[0]}" for k, v in field_errors.items())
    return ValidationError(f"Invalid input ({summary})", field_errors=field_errors)


def user_status(user: UserOut, now: datetime | None = None) -> str:
    """One word for tables, by the rule of ``models.User.status``: deleted, inactive,
    locked, unverified or active (faces show it without re-deriving the rule)."""
    if user.deleted_at is not None:
        return "deleted"
    if not user.is_active:
        return "inactive"
    if user.locked_until is not None and user.locked_until > (now or datetime.now(UTC)):
        return "locked"
    if not user.email_verified:
        return "unverified"
    return "active"


def user_out(user: Any) -> UserOut:
    profile = user.profile
    return UserOut(
        id=user.id,
        email=user.email,
        username=user.username,
        first_name=user.first_name,
        last_name=user.last_name,
        roles=user.roles,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
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
