"""Pydantic models of the second factor: enrolment, the login challenge and its answer.

A TOTP secret appears in :class:`TotpSetup` only (the answer to the setup that
made it), recovery codes in :class:`RecoveryCodes` only (the answer that made
them); no listing, log or audit event carries either.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from usermgmt.core.schemas import (
    NO_NUL,
    AuthResult,
    Password,
    Timestamp,
    Token,
    WriteModel,
    _no_default_null,
)

# A code as typed: digits of the authenticator app or a recovery code (spaces and
# dashes are ignored); what it must look like is checked as a wrong code, so that a
# malformed guess counts toward the lockout like any other.
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
MfaMethod = Literal["totp", "recovery_code"]


class MfaChallenge(BaseModel):
    """The answer to a correct password when the account has a second factor: no tokens
    yet, a single-use ``mfa_token`` for POST /auth/mfa/verify."""

    mfa_required: Literal[True] = True
    mfa_token: str
    methods: list[MfaMethod]
    expires_in: int


class LoginAnswer(RootModel[AuthResult | MfaChallenge]):
    """What a login answers: the user and tokens, or the second-factor challenge."""


def _code_or_recovery_code(schema: dict[str, Any], model: type) -> None:
    _no_default_null(schema, model)
    schema["oneOf"] = [{"required": ["code"]}, {"required": ["recovery_code"]}]


class MfaVerifyIn(WriteModel):
    """The challenge token and either a TOTP ``code`` or a ``recovery_code``."""

    model_config = ConfigDict(json_schema_extra=_code_or_recovery_code)

    mfa_token: Token
    code: Code = None
    recovery_code: Code = None

    @model_validator(mode="after")
    def _one_code(self) -> MfaVerifyIn:
        if (self.code is None) == (self.recovery_code is None):
            raise ValueError("Give either code or recovery_code")
        return self


class MfaCodeIn(WriteModel):
    code: Code


class MfaDisableIn(WriteModel):
    password: Password
    code: Code


class TotpSetup(BaseModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class MfaStatus(BaseModel):
    """An account's second factor as an admin sees it (no secret, no code)."""

    user_id: uuid.UUID
    email: str
    mfa_enabled: bool
    enrolled_at: Timestamp | None
    recovery_codes_left: int
