"""REST resources: one class per resource shape, each responder one core call.

Responders parse nothing themselves (the middleware reads the body, the
:func:`operation` decorator validates the query) and never check a
permission: the core does (it raises PermissionDenied / AuthenticationError).
"""

from __future__ import annotations

import falcon

from usermgmt import __version__
from usermgmt.api.errors import timestamp
from usermgmt.api.jsonio import write_model
from usermgmt.api.operations import operation
from usermgmt.api.schemas import HealthOut, LockIn, MessageOut, ReadyOut, UserGetQuery
from usermgmt.core import passwords
from usermgmt.core.errors import DomainError
from usermgmt.core.mfa_schemas import LoginAnswer, MfaChallenge
from usermgmt.core.schemas import (
    AuditPage,
    AuditQuery,
    AuthResult,
    ChangePasswordIn,
    ForgotPasswordIn,
    LoginIn,
    LogoutIn,
    RefreshIn,
    RefreshResult,
    RegisterIn,
    ResetPasswordIn,
    RoleList,
    RolesIn,
    SelfUpdate,
    SessionList,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
    UserQuery,
    UserReplace,
    VerifyEmailIn,
    parse,
)

API = "/api/v1"
FORGOT_MESSAGE = "If an account with that email exists, a password reset link has been sent."
RESEND_MESSAGE = "If the email address is not verified yet, a new verification link has been sent."
PASSWORD_POLICY = (
    f"the password policy (at least {passwords.MIN_LENGTH} characters with an uppercase "
    f"letter and a digit, at most {passwords.BCRYPT_MAX_BYTES} bytes in UTF-8, not a common "
    "password)"
)


def _no_store(resp: falcon.Response) -> None:
    resp.set_header("Cache-Control", "no-store")
    resp.set_header("Pragma", "no-cache")


class Resource:
    public = False

    def __init__(self, services, limiter=None, metrics=None) -> None:
        self.services = services
        self.limiter = limiter
        self.metrics = metrics


# ---- auth ------------------------------------------------------------------


class RegisterResource(Resource):
    public = True

    @operation(
        summary="Register a new account",
        tag="auth",
        success=201,
        response=AuthResult,
        body=RegisterIn,
        errors=(403, 409),
        refusals=((400, f"password fails {PASSWORD_POLICY}"),),
        rate_limit="auth",
        description="Returns the new user and a first pair of tokens. "
        "403 FORBIDDEN when self-registration is switched off.",
        success_headers=("Location",),
    )
    def on_post(self, req, resp):
        c = req.context
        result = self.services.auth.register(c.request_context, c.body)
        _no_store(resp)
        resp.location = f"{API}/users/{result.user.id}"
        write_model(resp, result, 201)


class LoginResource(Resource):
    public = True

    @operation(
        summary="Log in with email (or username) and password",
        tag="auth",
        response=LoginAnswer,
        body=LoginIn,
        errors=(401, 403),
        refusals=((423, "ACCOUNT_LOCKED after too many failed logins for this email or username"),),
        rate_limit="login",
        description="401 INVALID_CREDENTIALS for an unknown identifier or a wrong password "
        "(same body, same time); 403 ACCOUNT_DISABLED for a deactivated account; "
        "423 ACCOUNT_LOCKED with details.locked_until after too many failures. "
        "An account with a second factor answers `{mfa_required: true, mfa_token, methods, "
        "expires_in}` and no tokens: POST /auth/mfa/verify completes the login. "
        "`mfa_enrolment_required: true` says the role policy limits the session to enrolling "
        "a second factor (POST /auth/mfa/totp/setup and confirm), /auth/me and logout.",
    )
    def on_post(self, req, resp):
        c = req.context
        logins = self.metrics.logins
        try:
            result = self.services.auth.login(c.request_context, c.body)
        except DomainError as exc:
            self.metrics.login_refused(exc)
            raise
        _no_store(resp)
        if isinstance(result, MfaChallenge):
            logins.labels("mfa_required").inc()
            write_model(resp, result)
            return
        logins.labels("success").inc()
        c.actor_user_id = result.user.id
        write_model(resp, result)


class RefreshResource(Resource):
    public = True

    @operation(
        summary="Exchange a refresh token for a new pair (rotation)",
        tag="auth",
        response=RefreshResult,
        body=RefreshIn,
        errors=(401,),
        rate_limit="auth",
        description="The presented refresh token is spent. Presenting a rotated-out token "
        "again after the grace window revokes the whole session (401 TOKEN_REUSED).",
    )
    def on_post(self, req, resp):
        c = req.context
        result = self.services.auth.refresh(c.request_context, c.body)
        _no_store(resp)
        write_model(resp, result)


class LogoutResource(Resource):
    open_to_mfa_pending = True

    @operation(
        summary="Log out: revoke this session (and the one a given refresh token belongs to)",
        tag="auth",
        success=204,
        body=LogoutIn,
        body_required=False,
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.logout(c.actor, c.request_context, c.body)
        resp.status = falcon.HTTP_204


class MeResource(Resource):
    open_to_mfa_pending = True

    @operation(summary="The signed-in user", tag="auth", response=UserOut, errors=(404,))
    def on_get(self, req, resp):
        write_model(resp, self.services.auth.me(req.context.actor))

    @operation(
        summary="Change one's own names and profile",
        tag="auth",
        response=UserOut,
        body=SelfUpdate,
        errors=(404,),
    )
    def on_patch(self, req, resp):
        c = req.context
        write_model(resp, self.services.auth.update_me(c.actor, c.request_context, c.body))


class ChangePasswordResource(Resource):
    @operation(
        summary="Change one's own password (other sessions are revoked)",
        tag="auth",
        success=204,
        body=ChangePasswordIn,
        errors=(404,),
        refusals=(
            (
                400,
                "current_password is wrong, or new_password equals it or fails " + PASSWORD_POLICY,
            ),
        ),
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.change_password(c.actor, c.request_context, c.body)
        resp.status = falcon.HTTP_204


class ForgotPasswordResource(Resource):
    public = True

    @operation(
        summary="Ask for a password reset link",
        tag="auth",
        success=202,
        response=MessageOut,
        body=ForgotPasswordIn,
        rate_limit="auth",
        description="Always 202 with the same body, whether or not the email is registered.",
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.forgot_password(c.request_context, c.body)
        write_model(resp, MessageOut(message=FORGOT_MESSAGE), 202)


class ResetPasswordResource(Resource):
    public = True

    @operation(
        summary="Set a new password with a reset (or invitation) token",
        tag="auth",
        success=204,
        body=ResetPasswordIn,
        errors=(404,),
        refusals=(
            (
                400,
                "INVALID_TOKEN for an unknown, used or expired token, or new_password fails "
                + PASSWORD_POLICY,
            ),
        ),
        rate_limit="auth",
        description="400 INVALID_TOKEN when the token is unknown, used or expired. "
        "Every session of the user is revoked.",
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.reset_password(c.request_context, c.body)
        resp.status = falcon.HTTP_204


class VerifyEmailResource(Resource):
    public = True

    @operation(
        summary="Confirm an email address with a verification token",
        tag="auth",
        success=204,
        body=VerifyEmailIn,
        errors=(404,),
        refusals=((400, "INVALID_TOKEN for an unknown, used or expired token"),),
        rate_limit="auth",
        description="400 INVALID_TOKEN when the token is unknown, used or expired.",
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.verify_email(c.request_context, c.body)
        resp.status = falcon.HTTP_204


class ResendVerificationResource(Resource):
    @operation(
        summary="Send a new verification link to the signed-in user",
        tag="auth",
        success=202,
        response=MessageOut,
        errors=(404,),
        rate_limit="auth",
    )
    def on_post(self, req, resp):
        c = req.context
        self.services.auth.resend_verification(c.actor, c.request_context)
        write_model(resp, MessageOut(message=RESEND_MESSAGE), 202)


# ---- users -----------------------------------------------------------------


class UsersResource(Resource):
    @operation(
        summary="List users (filters, sort, pages or keyset cursor)",
        tag="users",
        response=UserPage,
        query=UserQuery,
        errors=(403,),
        refusals=((400, "a cursor that is not a meta.next_cursor of the same sort"),),
        description="Moderators and admins; include_deleted=true is for admins. "
        "Unknown query parameters are refused (400).",
    )
    def on_get(self, req, resp):
        c = req.context
        write_model(resp, self.services.user_reads.list(c.actor, c.query))

    @operation(
        summary="Create a user (admin)",
        tag="users",
        success=201,
        response=UserOut,
        body=UserCreate,
        errors=(403, 409),
        refusals=((400, f"password fails {PASSWORD_POLICY}"),),
        description="Without a password the user is sent an invitation link.",
        success_headers=("Location",),
    )
    def on_post(self, req, resp):
        c = req.context
        user = self.services.users.create(c.actor, c.request_context, c.body)
        resp.location = f"{API}/users/{user.id}"
        write_model(resp, user, 201)


class UserResource(Resource):
    @operation(
        summary="Get a user",
        tag="users",
        response=UserOut,
        query=UserGetQuery,
        errors=(403, 404),
        description="A user may read only their own record; include_deleted=true is for admins.",
    )
    def on_get(self, req, resp, user_id: str):
        c = req.context
        write_model(
            resp,
            self.services.user_reads.get(c.actor, user_id, include_deleted=c.query.include_deleted),
        )

    @operation(
        summary="Replace the editable fields of a user (admin)",
        tag="users",
        response=UserOut,
        body=UserReplace,
        errors=(403, 404, 409),
        description="Omitted optional fields are cleared.",
    )
    def on_put(self, req, resp, user_id: str):
        c = req.context
        write_model(resp, self.services.users.replace(c.actor, c.request_context, user_id, c.body))

    @operation(
        summary="Change some fields of a user",
        tag="users",
        response=UserOut,
        body=UserPatch,
        errors=(403, 404, 409),
        description="A user editing themselves may change names and profile only; "
        "moderators may edit non-admin users; roles have their own operation.",
    )
    def on_patch(self, req, resp, user_id: str):
        c = req.context
        write_model(resp, self.services.users.update(c.actor, c.request_context, user_id, c.body))

    @operation(
        summary="Soft-delete a user (admin); their sessions are revoked",
        tag="users",
        success=204,
        errors=(403, 404, 409),
    )
    def on_delete(self, req, resp, user_id: str):
        c = req.context
        self.services.users.delete(c.actor, c.request_context, user_id)
        resp.status = falcon.HTTP_204


class RestoreResource(Resource):
    @operation(
        summary="Restore a soft-deleted user (admin)",
        tag="users",
        response=UserOut,
        errors=(403, 404, 409),
    )
    def on_post(self, req, resp, user_id: str):
        c = req.context
        write_model(resp, self.services.users.restore(c.actor, c.request_context, user_id))


class LockResource(Resource):
    @operation(
        summary="Lock a user (admin); their sessions are revoked",
        tag="users",
        response=UserOut,
        body=LockIn,
        body_required=False,
        errors=(403, 404, 409),
        description='Optional body {"minutes": n}; without it the lock lasts until unlocked.',
    )
    def on_post(self, req, resp, user_id: str):
        c = req.context
        spec = parse(LockIn, c.body)
        write_model(
            resp, self.services.users.lock(c.actor, c.request_context, user_id, spec.minutes)
        )


class UnlockResource(Resource):
    @operation(
        summary="Unlock a user and clear their failed-login counters (admin)",
        tag="users",
        response=UserOut,
        errors=(403, 404),
    )
    def on_post(self, req, resp, user_id: str):
        c = req.context
        write_model(resp, self.services.users.unlock(c.actor, c.request_context, user_id))


class UserRolesResource(Resource):
    @operation(
        summary="Set a user's roles (admin; never one's own)",
        tag="users",
        response=UserOut,
        body=RolesIn,
        errors=(403, 404, 409),
        description="409 when it would demote the last active admin.",
    )
    def on_put(self, req, resp, user_id: str):
        c = req.context
        body = c.body if c.body is not None else {}
        write_model(resp, self.services.roles.set(c.actor, c.request_context, user_id, body))


class UserSessionsResource(Resource):
    @operation(
        summary="List a user's live sessions (admin)",
        tag="users",
        response=SessionList,
        errors=(403, 404),
    )
    def on_get(self, req, resp, user_id: str):
        sessions = self.services.sessions.list(req.context.actor, user_id)
        write_model(resp, SessionList(data=sessions))

    @operation(
        summary="Revoke every session of a user (admin)",
        tag="users",
        success=204,
        errors=(403, 404),
    )
    def on_delete(self, req, resp, user_id: str):
        c = req.context
        self.services.sessions.revoke_all(c.actor, c.request_context, user_id)
        resp.status = falcon.HTTP_204


# ---- audit and roles ---------------------------------------------------------


class AuditResource(Resource):
    @operation(
        summary="Read the audit log, newest first (admin)",
        tag="audit",
        response=AuditPage,
        query=AuditQuery,
        errors=(403,),
        description="`action` may end in `*` for a prefix match; `cursor` comes from "
        "meta.next_cursor; `order=oldest` reads from the first event on.",
    )
    def on_get(self, req, resp):
        c = req.context
        write_model(resp, self.services.audit.query(c.actor, c.query))


class RolesResource(Resource):
    @operation(summary="The roles and what they allow", tag="roles", response=RoleList)
    def on_get(self, req, resp):
        write_model(resp, RoleList(data=self.services.roles.list(req.context.actor)))


# ---- operations --------------------------------------------------------------


class HealthResource(Resource):
    public = True

    @operation(
        summary="Liveness with version", tag="operations", uses_database=False, response=HealthOut
    )
    def on_get(self, req, resp):
        write_model(resp, HealthOut(status="ok", timestamp=timestamp(), version=__version__))


class LiveResource(Resource):
    public = True

    @operation(
        summary="200 while the process serves",
        tag="operations",
        uses_database=False,
        response=HealthOut,
    )
    def on_get(self, req, resp):
        write_model(resp, HealthOut(status="ok", timestamp=timestamp(), version=__version__))


def readiness_checks(services, limiter) -> dict[str, str]:
    """Each dependency /health/ready checks: 'ok' or 'unavailable' (also usermgmt_ready)."""
    checks = {"database": "ok" if services.health.database_ready() else "unavailable"}
    if limiter is not None:
        checks.update(limiter.readiness())
    return checks


class ReadyResource(Resource):
    public = True

    @operation(
        summary="200 when the database (and a shared rate-limit store) answer, else 503",
        tag="operations",
        response=ReadyOut,
        description="503 SERVICE_UNAVAILABLE while a dependency does not answer, with "
        "details.ready=false and details.checks naming each dependency 'ok' or "
        "'unavailable' (database; rate_limit_store when the counters live in Redis or "
        "another store of their own). Each check waits at most its timeout; recovers by "
        "itself.",
    )
    def on_get(self, req, resp):
        from usermgmt.core.errors import ServiceUnavailable

        checks = readiness_checks(self.services, self.limiter)
        down = [name for name, state in checks.items() if state != "ok"]
        if down:
            raise ServiceUnavailable(
                f"Not ready: {' and '.join(down)} unavailable",
                details={"ready": False, "database": checks["database"], "checks": checks},
            )
        write_model(
            resp,
            ReadyOut(status="ok", ready=True, database="ok", checks=checks, timestamp=timestamp()),
        )


class MetricsResource(Resource):
    public = True

    @operation(summary="Prometheus metrics of this process", tag="operations", uses_database=False)
    def on_get(self, req, resp):
        resp.content_type = self.metrics.content_type
        resp.data = self.metrics.render()


class OpenApiResource(Resource):
    public = True

    def __init__(self, document: bytes) -> None:
        self.document = document

    @operation(summary="This OpenAPI 3.1 document", tag="operations", uses_database=False)
    def on_get(self, req, resp):
        resp.content_type = falcon.MEDIA_JSON
        resp.data = self.document


class DocsResource(Resource):
    """Interactive docs: a small local page (no CDN) that renders /openapi.json."""

    public = True
    FILES = {
        "index.html": "text/html; charset=utf-8",
        "docs.js": "text/javascript; charset=utf-8",
        "docs.css": "text/css; charset=utf-8",
    }

    def __init__(self) -> None:
        from importlib.resources import files

        static = files("usermgmt.api") / "static"
        self.files = {name: (static / name).read_bytes() for name in self.FILES}

    @operation(
        summary="Interactive API documentation (HTML)", tag="operations", uses_database=False
    )
    def on_get(self, req, resp):
        self._send(resp, "index.html")

    def on_get_file(self, req, resp, name: str):
        if name not in self.files or name == "index.html":
            raise falcon.HTTPNotFound()
        self._send(resp, name)

    def _send(self, resp, name: str) -> None:
        resp.content_type = self.FILES[name]
        resp.set_header("Cache-Control", "no-cache")
        resp.data = self.files[name]
