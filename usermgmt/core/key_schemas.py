"""Pydantic models of API keys: what creating and listing keys take, what they return.

The secret itself appears in one model only, :class:`ApiKeyCreated`, the answer
to the request that made the key; no listing, log or audit event carries it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from usermgmt.core.schemas import (
    NOT_BLANK,
    QueryBool,
    QueryUuid,
    Timestamp,
    WriteModel,
    json_int,
)
from usermgmt.core.vocabulary import API_SCOPES, ApiScope, UserKind

# How long a key may be made to last, in days (ten years; none: it never expires).
MAX_EXPIRES_IN_DAYS = 3650
KeyName = Annotated[str, Field(max_length=100, pattern=NOT_BLANK), AfterValidator(str.strip)]
KeyState = Literal["active", "expired", "revoked"]


class ApiKeyCreate(WriteModel):
    name: KeyName
    scopes: list[ApiScope] = Field(min_length=1, max_length=len(API_SCOPES))
    expires_in_days: json_int(1, MAX_EXPIRES_IN_DAYS) | None = None
    # Whose key it is: the caller's own unless an admin names another user.
    user_id: uuid.UUID | None = None


class ApiKeyQuery(WriteModel):
    """The caller's own keys; an admin may ask for one user's (``user_id``) or all."""

    user_id: QueryUuid | None = None
    all: QueryBool = False


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    # The key's first characters, enough to tell keys apart; never enough to use one.
    prefix: str
    scopes: list[str]
    state: KeyState
    user_id: uuid.UUID
    owner: str  # the owner's username, or email when they have none
    owner_kind: UserKind
    created_at: Timestamp
    created_by: str
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    last_used_ip: str | None
    revoked_at: Timestamp | None


class ApiKeyCreated(BaseModel):
    key: ApiKeyOut
    secret: str = Field(description="The key itself, shown this once: only its digest is kept")


class ApiKeyList(BaseModel):
    data: list[ApiKeyOut]
