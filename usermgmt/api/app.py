"""The Falcon application: explicit composition over the core services.

``create_app(services)`` builds everything from what it is given; nothing here
reads the environment or connects to a database at import time.
"""

from __future__ import annotations

import falcon

from usermgmt.api import key_resources as keys
from usermgmt.api import mfa_resources as mfa
from usermgmt.api import openapi
from usermgmt.api import resources as r
from usermgmt.api import resources_remote as remote
from usermgmt.api.errors import install_error_handling
from usermgmt.api.metrics import Metrics, outbox_collector, readiness_collector
from usermgmt.api.middleware import (
    AuthMiddleware,
    BodyMiddleware,
    ClientIpResolver,
    DatabaseScopeMiddleware,
    RequestContextMiddleware,
)
from usermgmt.api.pages import page_routes
from usermgmt.api.ratelimit import RateLimiter
from usermgmt.api.webhooks import webhook_routes

API = r.API


def route_table(services, limiter: RateLimiter, metrics: Metrics) -> list[tuple[str, object]]:
    def make(cls):
        return cls(services, limiter, metrics)

    return [
        (f"{API}/auth/register", make(r.RegisterResource)),
        (f"{API}/auth/login", make(r.LoginResource)),
        (f"{API}/auth/refresh", make(r.RefreshResource)),
        (f"{API}/auth/logout", make(r.LogoutResource)),
        (f"{API}/auth/me", make(r.MeResource)),
        (f"{API}/auth/change-password", make(r.ChangePasswordResource)),
        (f"{API}/auth/forgot-password", make(r.ForgotPasswordResource)),
        (f"{API}/auth/reset-password", make(r.ResetPasswordResource)),
        (f"{API}/auth/verify-email", make(r.VerifyEmailResource)),
        (f"{API}/auth/resend-verification", make(r.ResendVerificationResource)),
        (f"{API}/auth/mfa/verify", make(mfa.MfaVerifyResource)),
        (f"{API}/auth/mfa/totp/setup", make(mfa.TotpSetupResource)),
        (f"{API}/auth/mfa/totp/confirm", make(mfa.TotpConfirmResource)),
        (f"{API}/auth/mfa/totp", make(mfa.TotpResource)),
        (f"{API}/auth/mfa/recovery-codes", make(mfa.RecoveryCodesResource)),
        (f"{API}/info", make(remote.InfoResource)),
        (f"{API}/users", make(r.UsersResource)),
        # Literal segments win over {user_id} in Falcon's router, whatever the order.
        (f"{API}/users/resolve", make(remote.ResolveResource)),
        (f"{API}/users/ensure", make(remote.EnsureResource)),
        (f"{API}/users/import", make(remote.ImportResource)),
        (f"{API}/users/export", make(remote.ExportResource)),
        (f"{API}/users/{{user_id}}", make(r.UserResource)),
        (f"{API}/users/{{user_id}}/restore", make(r.RestoreResource)),
        (f"{API}/users/{{user_id}}/lock", make(r.LockResource)),
        (f"{API}/users/{{user_id}}/unlock", make(r.UnlockResource)),
        (f"{API}/users/{{user_id}}/roles", make(r.UserRolesResource)),
        (f"{API}/users/{{user_id}}/sessions", make(r.UserSessionsResource)),
        (f"{API}/users/{{user_id}}/password", make(remote.UserPasswordResource)),
        (f"{API}/users/{{user_id}}/mfa", make(mfa.UserMfaResource)),
        (f"{API}/sessions/{{session_id}}", make(remote.SessionResource)),
        (f"{API}/audit", make(r.AuditResource)),
        (f"{API}/audit/verify", make(remote.AuditVerifyResource)),
        (f"{API}/audit/head", make(remote.AuditHeadResource)),
        (f"{API}/roles", make(r.RolesResource)),
        (f"{API}/maintenance/purge", make(remote.PurgeResource)),
        (f"{API}/mail", make(remote.MailListResource)),
        (f"{API}/mail/deliver", make(remote.MailDeliverResource)),
        (f"{API}/mail/{{mail_id}}/retry", make(remote.MailRetryResource)),
        (f"{API}/api-keys", make(keys.ApiKeysResource)),
        (f"{API}/api-keys/{{key_id}}", make(keys.ApiKeyResource)),
        *webhook_routes(make),
        ("/health", make(r.HealthResource)),
        ("/health/live", make(r.LiveResource)),
        ("/health/ready", make(r.ReadyResource)),
        ("/metrics", make(r.MetricsResource)),
    ]


def create_app(
    services,
    *,
    limiter: RateLimiter | None = None,
    metrics: Metrics | None = None,
) -> falcon.App:
    """Build the WSGI app over ``services`` (a ``usermgmt.core.services.Services``).

    ``limiter`` defaults to one built from the configured rate limits;
    ``metrics`` to a fresh registry of this app's own.
    """
    options = services.runtime.api_options
    metrics = metrics or Metrics()
    metrics.publish_audit_head(services.audit.head)
    limiter = limiter or RateLimiter(
        options.rate_limits, database_store=services.runtime.rate_limit_counters
    )
    metrics.publish_at_scrape(readiness_collector(lambda: r.readiness_checks(services, limiter)))
    metrics.publish_at_scrape(outbox_collector(services.mail.counts))
    resolver = ClientIpResolver(options.trusted_proxies)

    middleware: list[object] = [
        DatabaseScopeMiddleware(services.scopes),
        RequestContextMiddleware(metrics, resolver, services.ids),
    ]
    if options.cors_origins:
        middleware.append(
            falcon.CORSMiddleware(
                allow_origins=list(options.cors_origins),
                expose_headers=["X-Request-ID", "Retry-After", "Location"],
            )
        )
    routes = route_table(services, limiter, metrics)
    uploads = {
        path: resource.max_upload_bytes
        for path, resource in routes
        if getattr(resource, "max_upload_bytes", None)
    }
    middleware += [
        AuthMiddleware(services.auth, services.api_keys, limiter),
        BodyMiddleware(options.max_body_bytes, uploads),
    ]

    app = falcon.App(middleware=middleware)
    app.req_options.strip_url_path_trailing_slash = False
    install_error_handling(app)

    docs = r.DocsResource()
    spec = r.OpenApiResource(b"")
    document = openapi.build_openapi(
        [*routes, ("/openapi.json", spec), ("/docs", docs)],
        max_body_bytes=options.max_body_bytes,
    )
    spec.document = openapi.render(document)
    for path, resource in [*routes, ("/openapi.json", spec), ("/docs", docs)]:
        add_route(app, path, resource)
    add_route(app, "/docs/{name}", docs, suffix="file")
    for path, resource in page_routes(services, limiter):  # HTML, outside the OpenAPI
        add_route(app, path, resource)
    return app


def add_route(app: falcon.App, path: str, resource: object, suffix: str | None = None) -> None:
    """Route ``path``, answering HEAD wherever there is a GET.

    HEAD runs the GET responder; Falcon sends its status and headers (with the
    GET body's Content-Length) and drops the body. The OpenAPI document lists
    the GET operations only.
    """
    get, head = (
        ("on_get", "on_head") if suffix is None else (f"on_get_{suffix}", f"on_head_{suffix}")
    )
    responder = getattr(resource, get, None)
    if responder is not None and not hasattr(resource, head):
        setattr(resource, head, responder)
    app.add_route(path, resource, suffix=suffix)
