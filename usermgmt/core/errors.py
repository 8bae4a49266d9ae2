"""One hierarchy of domain errors, each with a stable ``code`` from the API contract.

Faces map these to HTTP statuses, CLI exit codes and TUI notifications with one
table each, looked up by class hierarchy (most specific class first).
Messages never contain a password, a token or a database URL with its password.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    code = "INTERNAL_ERROR"
    default_message = "Unexpected error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        field_errors: dict[str, list[str]] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details or {}
        self.field_errors = field_errors or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        if self.field_errors:
            body["field_errors"] = self.field_errors
        return body


class ValidationError(DomainError):
    code = "VALIDATION_ERROR"
    default_message = "Invalid input"

    @classmethod
    def for_field(cls, field: str, message: str) -> ValidationError:
        return cls(f"{field}: {message}", field_errors={field: [message]})


class InvalidToken(DomainError):
    code = "INVALID_TOKEN"
    default_message = "Token is invalid, used or expired"


class AuthenticationError(DomainError):
    code = "UNAUTHORIZED"
    default_message = "Authentication required"


class InvalidCredentials(AuthenticationError):
    code = "INVALID_CREDENTIALS"
    default_message = "Invalid credentials"


class TokenReused(AuthenticationError):
    code = "TOKEN_REUSED"
    default_message = "Refresh token was already used; the session has been revoked"


class NotLoggedIn(AuthenticationError):
    """Remote mode: no credentials, or the server refused them (expired, revoked, unknown)."""

    code = "NOT_LOGGED_IN"
    default_message = "Not logged in: run `usermgmt login --server URL`"


class PermissionDenied(DomainError):
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this"


class AccountDisabled(PermissionDenied):
    code = "ACCOUNT_DISABLED"
    default_message = "Account is disabled"


class NotFound(DomainError):
    code = "NOT_FOUND"
    default_message = "Not found"


class Conflict(DomainError):
    code = "CONFLICT"
    default_message = "Conflicts with the current state"


class EmailExists(Conflict):
    code = "EMAIL_EXISTS"
    default_message = "Email is already registered"


class UsernameExists(Conflict):
    code = "USERNAME_EXISTS"
    default_message = "Username is already taken"


class AccountLocked(DomainError):
    code = "ACCOUNT_LOCKED"
    default_message = "Account is temporarily locked"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    default_message = "Too many requests"


class ServiceUnavailable(DomainError):
    code = "SERVICE_UNAVAILABLE"
    default_message = "Database is unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database did not answer (connection refused, timeout, bad URL)."""


class DatabaseBusy(DatabaseUnavailable):
    """The database answered but could not take the work in time (a lock held elsewhere
    past the busy or lock timeout, no pooled connection free): nothing was applied, and
    the database is still there."""

    default_message = "Database is busy; try again"


class SchemaOutOfDate(ServiceUnavailable):
    """The database schema is behind the code; `usermgmt db upgrade` fixes it."""

    default_message = "Database schema is out of date; run `usermgmt db upgrade`"


class UnexpectedDatabaseError(DomainError):
    """The database refused a statement for a reason that is no one's input: a bug.

    Its code is INTERNAL_ERROR, so every face treats it as it treats any
    unexpected error (API 500, logged with the request id; CLI exit 1).
    """

    default_message = "Unexpected database error"


class ConfigurationError(DomainError):
    """A setting has a bad value. Raised at start, never silently defaulted."""

    code = "VALIDATION_ERROR"
    default_message = "Invalid configuration"


class AuditChainBroken(DomainError):
    code = "AUDIT_CHAIN_BROKEN"
    default_message = "Audit chain is broken"


class InvalidMfaCode(AuthenticationError):
    """A second-factor code or recovery code that is wrong or already used, or an
    expired or spent challenge."""

    code = "INVALID_MFA_CODE"
    default_message = "Invalid or expired second-factor code"
