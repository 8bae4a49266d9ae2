"""Every error the API returns has the contract's body; one table maps domain errors.

Domain errors (``usermgmt.core.errors``) become :class:`ApiError` through ONE
table looked up by class hierarchy (most specific class first). Falcon's own
errors (routing 404/405, 413, 415 …) and :class:`ApiError` are all rendered by
:func:`serialize_error`, so every 4xx/5xx carries ``{"error": {code, message,
details?, field_errors?, request_id, timestamp}}``. Unexpected exceptions are
logged with the request id and answered with a bare 500 (no trace, no SQL).
"""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

import falcon

from usermgmt.core.errors import (
    AccountLocked,
    AuthenticationError,
    Conflict,
    DomainError,
    InvalidToken,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    ValidationError,
)

log = logging.getLogger("usermgmt.api")

# The one table: domain error class -> HTTP status. Looked up along the MRO,
# so AccountDisabled (a PermissionDenied) is 403 and EmailExists (a Conflict) 409.
ERROR_STATUS: dict[type[DomainError], int] = {
    ValidationError: 400,
    InvalidToken: 400,
    AuthenticationError: 401,
    PermissionDenied: 403,
    NotFound: 404,
    Conflict: 409,
    AccountLocked: 423,
    RateLimited: 429,
    ServiceUnavailable: 503,
    DomainError: 500,
}

# Codes for Falcon's own errors (and any HTTP status without a domain error).
STATUS_CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    423: "ACCOUNT_LOCKED",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}

# Messages for Falcon's own errors (its titles repeat the status line).
STATUS_MESSAGES: dict[int, str] = {
    400: "Invalid request",
    404: "No such resource",
    405: "Method not allowed on this resource",
    413: "Request body is too large",
    415: "Unsupported media type",
    500: "Internal server error",
}

# Seconds a client should wait before retrying after a 503.
UNAVAILABLE_RETRY_AFTER = 5


class ApiError(falcon.HTTPError):
    """An HTTP error with the contract's code, message, details and field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        field_errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, title=message, headers=headers)
        self.code = code
        self.message = message
        self.details = details or {}
        self.field_errors = field_errors or {}


def bad_request(message: str, field: str = "body") -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", message, field_errors={field: [message]})


def status_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        status = ERROR_STATUS.get(cls)
        if status is not None:
            return status
    return 500


def to_api_error(exc: DomainError) -> ApiError:
    status = status_for(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    elif status == 429:
        retry = exc.details.get("retry_after")
        headers["Retry-After"] = str(max(1, int(retry))) if retry is not None else "60"
    elif status == 423:
        seconds = _seconds_until(exc.details.get("locked_until"))
        if seconds is not None:
            headers["Retry-After"] = str(seconds)
    elif status == 503:
        headers["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER)
    message = exc.message
    code = exc.code
    if status == 500:
        # A domain error without an HTTP meaning: say nothing about internals.
        code, message = "INTERNAL_ERROR", "Internal server error"
    return ApiError(
        status,
        code,
        message,
        details=exc.details if status != 500 else None,
        field_errors=exc.field_errors,
        headers=headers or None,
    )


def _seconds_until(iso: Any) -> int | None:
    if not isinstance(iso, str):
        return None
    try:
        until = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return None
    seconds = (until - datetime.now(UTC)).total_seconds()
    # An admin lock "until unlocked" has no useful retry time.
    if seconds <= 0 or seconds > 86400:
        return None
    return max(1, math.ceil(seconds))


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_body(
    code: str,
    message: str,
    request_id: str | None,
    details: dict[str, Any] | None = None,
    field_errors: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    if field_errors:
        error["field_errors"] = field_errors
    error["request_id"] = request_id
    error["timestamp"] = timestamp()
    return {"error": error}


def serialize_error(req: falcon.Request, resp: falcon.Response, exc: falcon.HTTPError) -> None:
    """Render any HTTPError (ours or Falcon's) as the contract's error body."""
    status = exc.status_code
    if isinstance(exc, ApiError):
        code, message = exc.code, exc.message
        details, field_errors = exc.details, exc.field_errors
    else:
        code = STATUS_CODES.get(status) or _code_from_title(exc.title or "")
        message = STATUS_MESSAGES.get(status) or exc.title or "Error"
        if exc.description:
            message = f"{message}: {exc.description}"
        details, field_errors = None, None
    request_id = getattr(req.context, "request_id", None)
    resp.data = json.dumps(
        error_body(code, message, request_id, details, field_errors), default=str
    ).encode()
    resp.content_type = falcon.MEDIA_JSON
    if status == 401 and resp.get_header("WWW-Authenticate") is None:
        resp.set_header("WWW-Authenticate", "Bearer")
    req.context.error_code = code


def _code_from_title(title: str) -> str:
    return "_".join(title.upper().replace("-", " ").split()) or "ERROR"


def _log_unexpected(req: falcon.Request, exc: BaseException) -> None:
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"request_id": getattr(req.context, "request_id", None)},
    )


def install_error_handling(app: falcon.App) -> None:
    """Register the domain-error table, the catch-all 500 and the error serializer."""

    def handle_domain_error(req, resp, exc: DomainError, params) -> None:
        error = to_api_error(exc)
        if error.status_code == 500:  # e.g. an unexpected database error: a bug
            _log_unexpected(req, exc)
        raise error

    def handle_unexpected(req, resp, exc: Exception, params) -> None:
        _log_unexpected(req, exc)
        raise ApiError(500, "INTERNAL_ERROR", "Internal server error")

    app.add_error_handler(Exception, handle_unexpected)
    # Falcon prefers the most specific registered class, so HTTPError keeps its
    # default handler (which calls the serializer below).
    app.add_error_handler(DomainError, handle_domain_error)
    app.set_error_serializer(serialize_error)
