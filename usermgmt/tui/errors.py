"""The one table mapping domain errors to what the console shows.

Looked up by class hierarchy (most specific class first). Validation errors
are shown next to the fields of the form that caused them; everything else is
a toast. A database that went away is an error toast once, then the console
pings it in the background until it answers; a busy one only refused that call.
Errors that are not DomainErrors (bugs) open the error modal instead: see
``ConsoleContext.run`` (tui/context.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from usermgmt.core.errors import (
    AccountLocked,
    AuditChainBroken,
    AuthenticationError,
    Conflict,
    DatabaseBusy,
    DomainError,
    InvalidToken,
    NotFound,
    NotLoggedIn,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)


@dataclass(frozen=True)
class Reaction:
    severity: Literal["information", "warning", "error"]
    title: str
    inline: bool = False  # a form shows it next to its fields
    offline: bool = False  # the database is gone: reconnect in the background
    message: str | None = None  # what the toast says instead of the error's own message


REACTIONS: dict[type[DomainError], Reaction] = {
    ValidationError: Reaction("warning", "Invalid input", inline=True),
    NotFound: Reaction("warning", "Not found"),
    Conflict: Reaction("warning", "Conflict"),
    AccountLocked: Reaction("warning", "Account locked"),
    RateLimited: Reaction("warning", "Too many requests"),
    InvalidToken: Reaction("warning", "Invalid token"),
    NotLoggedIn: Reaction("error", "Not logged in"),
    AuthenticationError: Reaction("error", "Not signed in"),
    PermissionDenied: Reaction("error", "Not allowed"),
    # Busy is not gone: the call was refused (writes are never retried), the database is there.
    DatabaseBusy: Reaction("warning", "Database busy", message="Database busy — not applied."),
    ServiceUnavailable: Reaction("error", "Database unavailable", offline=True),
    AuditChainBroken: Reaction("error", "Audit chain broken"),
    DomainError: Reaction("error", "Error"),
}


def reaction_for(exc: DomainError) -> Reaction:
    for cls in type(exc).__mro__:
        if cls in REACTIONS:
            return REACTIONS[cls]
    return REACTIONS[DomainError]
