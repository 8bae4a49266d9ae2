"""The few shapes that exist only at the HTTP edge (everything else is core.schemas)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, WithJsonSchema

from usermgmt.core.schemas import QueryBool, WriteModel, json_int

# An RFC 3339 UTC time already rendered (usermgmt.api.errors.timestamp).
TimestampText = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class LockIn(WriteModel):
    """Optional body of POST /users/{id}/lock: a duration; without it, until unlocked."""

    minutes: json_int(1, 10_000_000) = None


class UserGetQuery(WriteModel):
    include_deleted: QueryBool = False


class NoQuery(WriteModel):
    """Operations without query parameters refuse any (strict, like write bodies)."""


class MessageOut(BaseModel):
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None
    field_errors: dict[str, list[str]] | None = None
    request_id: str | None
    timestamp: TimestampText


class ErrorBody(BaseModel):
    error: ErrorDetail


class HealthOut(BaseModel):
    status: Literal["ok"]
    timestamp: TimestampText
    version: str


class ReadyOut(BaseModel):
    status: Literal["ok"]
    ready: Literal[True]
    database: Literal["ok"]
    # Each dependency checked: "database", and "rate_limit_store" for a store of its own.
    checks: dict[str, Literal["ok"]]
    timestamp: TimestampText
