"""Cross-cutting work: request id, client IP, auth, request bodies, headers, logs, metrics.

Order (process_request/process_resource run top to bottom, process_response
bottom to top): :class:`DatabaseScopeMiddleware` is first, so the request's
read connection goes back to the pool after everything else;
:class:`RequestContextMiddleware`, whose response hook sees the final status
for the log line, the metrics and the headers; CORS (only when origins are
configured); :class:`AuthMiddleware`; :class:`BodyMiddleware`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import falcon

from usermgmt.api.jsonio import BODY_METHODS, read_body, too_large
from usermgmt.api.metrics import Metrics
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import AuthenticationError, PermissionDenied
from usermgmt.core.services.api_keys import looks_like_key

if TYPE_CHECKING:
    from usermgmt.core.ids import IdSource

access_log = logging.getLogger("usermgmt.api.access")

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
API_CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def _parse_ip(value: str):
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class ClientIpResolver:
    """The socket peer, unless it is a trusted proxy: then X-Forwarded-For, rightmost untrusted.

    Trusted proxies are addresses or networks (``10.0.0.0/8``).
    """

    def __init__(self, trusted: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(t.strip(), strict=False) for t in trusted]

    def _trusted(self, ip) -> bool:
        return ip is not None and any(ip in net for net in self.networks)

    def is_trusted_peer(self, peer: str | None) -> bool:
        return bool(self.networks) and self._trusted(_parse_ip(peer or ""))

    def resolve(self, peer: str | None, forwarded_for: str | None) -> str | None:
        if not self.networks or not forwarded_for:
            return peer
        peer_ip = _parse_ip(peer or "")
        if not self._trusted(peer_ip):
            return peer
        hops = [h for h in forwarded_for.split(",") if h.strip()]
        client = peer
        for hop in reversed(hops):
            ip = _parse_ip(hop)
            if ip is None:  # garbage from an untrusted client: stop believing
                break
            client = str(ip)
            if not self._trusted(ip):
                break
        return client


class DatabaseScopeMiddleware:
    """One pooled connection for the single-statement reads of a request.

    The token check and, say, the user read share it (see
    ``usermgmt.core.services.scopes``); it is taken on first use and returned
    when the response is done, whatever happened.
    """

    def __init__(self, scopes) -> None:
        self.scopes = scopes

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.db_scope = self.scopes.open()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool
    ) -> None:
        scope = getattr(req.context, "db_scope", None)
        if scope is not None:
            req.context.db_scope = None
            self.scopes.close(scope)


class RequestContextMiddleware:
    """Request id, client IP, timing; on the way out: headers, one log line, metrics."""

    def __init__(
        self, metrics: Metrics, resolver: ClientIpResolver, ids: IdSource, *, hsts: bool = True
    ) -> None:
        """``ids``: the services' id source, which names requests that come without an id."""
        self.metrics = metrics
        self.resolver = resolver
        self.ids = ids
        self.hsts = hsts

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        ctx = req.context
        ctx.started = time.perf_counter()
        given = req.get_header("X-Request-ID")
        ctx.request_id = given if given and REQUEST_ID_RE.match(given) else self.ids.new_uuid().hex
        ctx.client_ip = self.resolver.resolve(req.remote_addr, req.get_header("X-Forwarded-For"))
        ctx.actor = Actor.anonymous()
        ctx.request_context = RequestContext(
            ip=ctx.client_ip,
            request_id=ctx.request_id,
            user_agent=(req.user_agent or None) and req.user_agent[:300],
        )

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource, req_succeeded: bool
    ) -> None:
        ctx = req.context
        request_id = getattr(ctx, "request_id", None) or self.ids.new_uuid().hex
        resp.set_header("X-Request-ID", request_id)
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        path = req.path
        # A resource serving pages declares its own policy (usermgmt.api.pages).
        page_csp = getattr(resource, "content_security_policy", None)
        if page_csp:
            resp.set_header("Content-Security-Policy", page_csp)
        elif path == "/docs" or path.startswith("/docs/"):
            resp.set_header("Content-Security-Policy", DOCS_CSP)
        else:
            resp.set_header("Content-Security-Policy", API_CSP)
        if path.startswith("/api/") or getattr(resource, "no_store", False):
            resp.set_header("Cache-Control", "no-store")
        if self.hsts and is_https(req, self.resolver):
            resp.set_header("Strict-Transport-Security", "max-age=31536000")

        status = resp.status_code
        route = req.uri_template or "unmatched"
        method = req.method if req.method in KNOWN_METHODS else "OTHER"
        seconds = time.perf_counter() - getattr(ctx, "started", time.perf_counter())
        self.metrics.observe(method, route, status, seconds)
        if status >= 400:
            self.metrics.errors.labels(str(status), getattr(ctx, "error_code", "ERROR")).inc()
        actor = getattr(ctx, "actor", None)
        user_id = actor.user_id if actor is not None else None
        user_id = user_id or getattr(ctx, "actor_user_id", None)  # set by a successful login
        user_id = str(user_id) if user_id else None
        access_log.info(
            "%s %s %s",
            method,
            route,
            status,
            extra={
                "method": method,
                "route": route,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": request_id,
                "user_id": user_id,
                "ip": getattr(ctx, "client_ip", None),
            },
        )


def is_https(req: falcon.Request, resolver: ClientIpResolver) -> bool:
    """HTTPS on the socket, or said so by a trusted proxy (X-Forwarded-Proto)."""
    if req.scheme == "https":
        return True
    proto = req.get_header("X-Forwarded-Proto")
    return (
        proto is not None
        and proto.split(",")[0].strip().lower() == "https"
        and resolver.is_trusted_peer(req.remote_addr)
    )


def _has_responder(req: falcon.Request, resource) -> bool:
    return resource is not None and hasattr(resource, "on_" + req.method.lower())


# The login endpoint's rate-limit counter (its responder's name, see operations.py): a
# failed API key counts there, like a failed login from the same client.
LOGIN_LIMIT_SCOPE = "LoginResource.on_post"


class AuthMiddleware:
    """Checks the bearer token (an access token, or an API key ``umk_…``) with the core on
    every request to a non-public resource.

    Public resources (``public = True``: register, login, refresh, password
    reset, verification, health, docs) ignore the Authorization header. A key
    that fails counts toward the client's login rate limit; past it the answer
    is 429 instead of 401. A valid key costs no rate-limit lookup.
    """

    def __init__(self, auth_service, api_keys=None, limiter=None) -> None:
        self.auth = auth_service
        self.api_keys = api_keys
        self.limiter = limiter

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        if (
            getattr(resource, "public", False)
            or req.method == "OPTIONS"
            or not _has_responder(req, resource)
        ):
            return
        header = req.get_header("Authorization")
        if not header:
            raise AuthenticationError("Authentication required (Authorization: Bearer <token>)")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise AuthenticationError(
                "Expected Authorization: Bearer <access token> or Bearer <API key>"
            )
        if self.api_keys is not None and looks_like_key(token):
            req.context.actor = self._key_actor(req, token)
        else:
            actor = self.auth.authenticate_token(token)
            if actor.mfa_pending and not getattr(resource, "open_to_mfa_pending", False):
                raise PermissionDenied(
                    "Set up a second factor first (USERMGMT_MFA_REQUIRED_ROLES): "
                    "POST /api/v1/auth/mfa/totp/setup, then /auth/mfa/totp/confirm",
                    details={"mfa_enrolment_required": True},
                )
            req.context.actor = actor

    def _key_actor(self, req: falcon.Request, key: str) -> Actor:
        ctx = req.context
        try:
            return self.api_keys.authenticate(key, ctx.request_context)
        except AuthenticationError:
            if self.limiter is not None:
                self.limiter.hit("login", LOGIN_LIMIT_SCOPE, ctx.client_ip or "unknown")
            raise


def _deletes_with_body(req: falcon.Request, resource) -> bool:
    """A DELETE that takes a body (turning the second factor off needs a password and code)."""
    if req.method != "DELETE":
        return False
    op = getattr(getattr(resource, "on_delete", None), "op", None)
    return op is not None and op.body is not None


class BodyMiddleware:
    """Reads and checks the JSON body of POST/PUT/PATCH before any responder runs.

    ``uploads`` maps the paths whose body is a file (an import) to their own
    limit; their resources read the stream themselves.
    """

    def __init__(self, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.max_bytes = max_bytes
        self.uploads = uploads or {}

    def process_request(self, req: falcon.Request, resp) -> None:
        # A declared length over the limit is refused before routing or reading.
        limit = self.uploads.get(req.path, self.max_bytes)
        if req.content_length is not None and req.content_length > limit:
            raise too_large(limit)

    def process_resource(self, req: falcon.Request, resp, resource, params) -> None:
        req.context.body = None
        if getattr(resource, "reads_own_body", False):  # HTML forms (usermgmt.api.pages)
            return
        if (
            (req.method in BODY_METHODS or _deletes_with_body(req, resource))
            and _has_responder(req, resource)
            and req.path not in self.uploads
        ):
            req.context.body = read_body(req, self.max_bytes)
