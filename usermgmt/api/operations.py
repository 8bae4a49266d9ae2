"""One declaration per operation: what it takes, returns and can fail with.

The :func:`operation` decorator puts an :class:`Op` on a responder and does
the per-operation edge work (rate limit, query validation, refusing a body
where none is taken). ``openapi.py`` reads the same declarations, so the
served document and the behaviour cannot drift apart.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from pydantic import BaseModel

from usermgmt.api.errors import ApiError
from usermgmt.api.schemas import NoQuery
from usermgmt.core.errors import RateLimited
from usermgmt.core.schemas import parse

# Statuses every operation can answer: 400 (unknown query parameters, or a body where
# none is taken, are refused everywhere) and 500 (an unexpected error). The others
# follow from the declaration: 503 when it uses the database, 401 unless public,
# 413/415 for POST/PUT/PATCH (whose bodies are read), 429 when rate-limited, and the
# operation's own ``errors`` and ``refusals``.
COMMON_ERRORS = (400, 500)


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    success: int = 200
    response: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] = NoQuery
    errors: tuple[int, ...] = ()
    # Business rules that refuse a request the schema allows, (status, the rule): the
    # password policy, a lockout, an unknown token. Documented on that status.
    refusals: tuple[tuple[int, str], ...] = ()
    rate_limit: str | None = None  # 'login' or 'auth'
    # Whose counter it spends (default: the operation's own): the second step of a login
    # spends the login's, so a wrong code costs what a wrong password does.
    rate_limit_scope: str | None = None
    description: str = ""
    success_headers: tuple[str, ...] = field(default_factory=tuple)
    uses_database: bool = True  # False: answers without it, so never 503
    # A body that is a file, not JSON: its media types (the resource reads the stream).
    upload_media: tuple[str, ...] = ()
    # A success body the responder streams: (media type, JSON schema) of each it may send.
    response_media: tuple[tuple[str, dict], ...] = ()

    def all_errors(self, *, public: bool, has_body: bool) -> list[int]:
        codes = set(COMMON_ERRORS) | set(self.errors) | {status for status, _ in self.refusals}
        if self.uses_database:
            codes.add(503)
        if not public:
            codes.add(401)
        if has_body:
            codes |= {413, 415}
        if self.rate_limit:
            codes.add(429)
        return sorted(codes)


def operation(**kwargs) -> callable:
    op = Op(**kwargs)

    def decorate(responder):
        scope = op.rate_limit_scope or responder.__qualname__
        # The answer to an empty query string, built once (None: a parameter is required).
        no_params = None if _has_required(op.query) else op.query()

        @functools.wraps(responder)
        def wrapper(resource, req, resp, **params):
            ctx = req.context
            if op.rate_limit:
                try:
                    resource.limiter.hit(op.rate_limit, scope, ctx.client_ip or "unknown")
                except RateLimited:
                    resource.metrics.rate_limited.labels(op.rate_limit).inc()
                    raise
            ctx.query = (
                parse(op.query, req.params) if req.params or no_params is None else no_params
            )
            if op.body is not None and op.body_required and ctx.body is None:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    "A JSON request body is required",
                    field_errors={"body": ["Field required"]},
                )
            if op.body is None and ctx.body:
                raise ApiError(
                    400,
                    "VALIDATION_ERROR",
                    "This operation takes no request body",
                    field_errors={k: ["Unknown or forbidden field"] for k in ctx.body},
                )
            return responder(resource, req, resp, **params)

        wrapper.op = op
        return wrapper

    return decorate


def _has_required(model: type[BaseModel]) -> bool:
    return any(f.is_required() for f in model.model_fields.values())
