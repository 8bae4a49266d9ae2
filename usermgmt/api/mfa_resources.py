"""The second factor: enrolment, the second step of a login, and the admin reset.

A session the role policy holds back (``mfa_pending``) reaches only the resources
marked ``open_to_mfa_pending`` (these enrolment ones, /auth/me and logout): the
:class:`~usermgmt.api.middleware.AuthMiddleware` refuses it everything else.
"""

from __future__ import annotations

import falcon

from usermgmt.api.jsonio import write_model
from usermgmt.api.middleware import LOGIN_LIMIT_SCOPE
from usermgmt.api.operations import operation
from usermgmt.api.resources import Resource
from usermgmt.core.errors import DomainError
from usermgmt.core.mfa_schemas import (
    MfaCodeIn,
    MfaDisableIn,
    MfaStatus,
    MfaVerifyIn,
    RecoveryCodes,
    TotpSetup,
)
from usermgmt.core.schemas import AuthResult

LOCKOUT = "ACCOUNT_LOCKED after too many failed logins (wrong passwords and wrong codes)"


def _no_store(resp: falcon.Response) -> None:
    resp.set_header("Cache-Control", "no-store")
    resp.set_header("Pragma", "no-cache")


class MfaVerifyResource(Resource):
    public = True

    @operation(
        summary="Complete a login with a TOTP code or a recovery code",
        tag="auth",
        response=AuthResult,
        body=MfaVerifyIn,
        errors=(401, 403),
        refusals=((423, LOCKOUT),),
        rate_limit="login",
        rate_limit_scope=LOGIN_LIMIT_SCOPE,
        description="`mfa_token` is the one the login answered (single use, short-lived). "
        "401 INVALID_MFA_CODE for a wrong code, a code whose time step was already used, a "
        "used recovery code, or an unknown, used or expired `mfa_token`. A wrong code counts "
        "toward the login identifier's lockout and the client's login rate limit like a "
        "wrong password; the challenge stays usable until it expires.",
    )
    def on_post(self, req, resp):
        c = req.context
        try:
            result = self.services.mfa.verify(c.request_context, c.body)
        except DomainError as exc:
            self.metrics.login_refused(exc)
            raise
        self.metrics.logins.labels("success").inc()
        c.actor_user_id = result.user.id
        _no_store(resp)
        write_model(resp, result)


class TotpSetupResource(Resource):
    open_to_mfa_pending = True

    @operation(
        summary="Start a TOTP enrolment: a new secret, its otpauth URI and QR code",
        tag="auth",
        response=TotpSetup,
        errors=(400, 403, 404, 409),
        description="Nothing is active until POST /auth/mfa/totp/confirm gets a code from "
        "the app; a new setup replaces an unconfirmed one. 409 CONFLICT when a second "
        "factor is already enabled (disable it first).",
    )
    def on_post(self, req, resp):
        c = req.context
        _no_store(resp)
        write_model(resp, self.services.mfa.setup(c.actor, c.request_context))


class TotpConfirmResource(Resource):
    open_to_mfa_pending = True

    @operation(
        summary="Confirm a TOTP enrolment with a code; answers the recovery codes (once)",
        tag="auth",
        response=RecoveryCodes,
        body=MfaCodeIn,
        errors=(403, 404, 409),
        rate_limit="auth",
        description="Ten single-use recovery codes, shown this once and kept only as "
        "digests. A session that the role policy held back becomes a full one. 401 "
        "INVALID_MFA_CODE for a wrong code; 409 CONFLICT without a setup.",
    )
    def on_post(self, req, resp):
        c = req.context
        _no_store(resp)
        write_model(resp, self.services.mfa.confirm(c.actor, c.request_context, c.body))


class TotpResource(Resource):
    @operation(
        summary="Turn one's own second factor off (password and a code)",
        tag="auth",
        success=204,
        body=MfaDisableIn,
        errors=(403, 404, 409),
        rate_limit="auth",
        refusals=((400, "the password is wrong"),),
        description="`code` is a TOTP code or an unused recovery code. 401 "
        "INVALID_MFA_CODE for a wrong one; 409 CONFLICT when no second factor is enabled.",
    )
    def on_delete(self, req, resp):
        c = req.context
        self.services.mfa.disable(c.actor, c.request_context, c.body)
        resp.status = falcon.HTTP_204


class RecoveryCodesResource(Resource):
    @operation(
        summary="New recovery codes (the old ones stop working)",
        tag="auth",
        response=RecoveryCodes,
        body=MfaCodeIn,
        errors=(403, 404, 409),
        rate_limit="auth",
        description="Needs a TOTP code (or an unused recovery code). 401 INVALID_MFA_CODE "
        "for a wrong one; 409 CONFLICT when no second factor is enabled.",
    )
    def on_post(self, req, resp):
        c = req.context
        _no_store(resp)
        write_model(
            resp,
            self.services.mfa.regenerate_recovery_codes(c.actor, c.request_context, c.body),
        )


class UserMfaResource(Resource):
    @operation(
        summary="A user's second factor: enabled, since when, recovery codes left (admin)",
        tag="users",
        response=MfaStatus,
        errors=(403, 404),
    )
    def on_get(self, req, resp, user_id: str):
        write_model(resp, self.services.mfa.status(req.context.actor, user_id))

    @operation(
        summary="Reset a user's second factor (admin); ends the user's sessions",
        tag="users",
        success=204,
        errors=(403, 404, 409),
        description="The secret and recovery codes are deleted, `mfa_enabled` becomes "
        "false, every session of the user is revoked and the user is mailed a notice. "
        "409 CONFLICT when the user has no second factor.",
    )
    def on_delete(self, req, resp, user_id: str):
        c = req.context
        self.services.mfa.reset(c.actor, c.request_context, user_id)
        resp.status = falcon.HTTP_204
