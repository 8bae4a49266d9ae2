"""API error bodies back into the core's domain errors, so each face's one table serves."""

from __future__ import annotations

from typing import Any

from usermgmt.core import errors as e

# The API contract's codes; a code not listed maps by status (see ``error_from``).
BY_CODE: dict[str, type[e.DomainError]] = {
    "VALIDATION_ERROR": e.ValidationError,
    "INVALID_TOKEN": e.InvalidToken,
    "UNAUTHORIZED": e.AuthenticationError,
    "INVALID_CREDENTIALS": e.InvalidCredentials,
    "TOKEN_REUSED": e.TokenReused,
    "INVALID_MFA_CODE": e.InvalidMfaCode,
    "FORBIDDEN": e.PermissionDenied,
    "ACCOUNT_DISABLED": e.AccountDisabled,
    "NOT_FOUND": e.NotFound,
    "EMAIL_EXISTS": e.EmailExists,
    "USERNAME_EXISTS": e.UsernameExists,
    "CONFLICT": e.Conflict,
    "ACCOUNT_LOCKED": e.AccountLocked,
    "RATE_LIMITED": e.RateLimited,
    "SERVICE_UNAVAILABLE": e.ServiceUnavailable,
    "AUDIT_CHAIN_BROKEN": e.AuditChainBroken,
    "PAYLOAD_TOO_LARGE": e.ValidationError,
    "UNSUPPORTED_MEDIA_TYPE": e.ValidationError,
}
BY_STATUS: dict[int, type[e.DomainError]] = {
    400: e.ValidationError,
    401: e.AuthenticationError,
    403: e.PermissionDenied,
    404: e.NotFound,
    409: e.Conflict,
    413: e.ValidationError,
    415: e.ValidationError,
    423: e.AccountLocked,
    429: e.RateLimited,
    503: e.ServiceUnavailable,
}

# A 503 whose message says busy (docs/api.md: "busy; try again" where retrying helps).
BUSY_PREFIX = "Database is busy"


def error_from(status: int, body: Any, server: str) -> e.DomainError:
    """The domain error an error response stands for, with the server's message."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    cls = BY_CODE.get(code or "") or BY_STATUS.get(status)
    message = error.get("message") if isinstance(error.get("message"), str) else None
    if cls is None:
        cls = e.DomainError
        message = f"The server {server} answered HTTP {status}" + (
            f": {message}" if message else ""
        )
    details = error.get("details") if isinstance(error.get("details"), dict) else None
    field_errors = error.get("field_errors")
    if not isinstance(field_errors, dict):
        field_errors = None
    if cls is e.ServiceUnavailable and (message or "").startswith(BUSY_PREFIX):
        cls = e.DatabaseBusy  # the server's database is there, it refused this one call
    exc = cls(message, details=details, field_errors=field_errors)
    if isinstance(exc, e.ServiceUnavailable):
        exc.message = f"{exc.message.rstrip('.')} (server: {server})"
        exc.args = (exc.message,)
    return exc
