"""The second factor: TOTP (RFC 6238: 30 s steps, 6 digits) with single-use recovery codes.

Enrolment is two steps: ``setup`` stores a new secret (encrypted, usermgmt.core.mfa_keys)
that does nothing until ``confirm`` proves the app has it; then ten recovery codes are
shown once and kept as digests. A login whose password is right answers a challenge
(:func:`issue_challenge`) instead of tokens when the account has a confirmed factor;
:meth:`MfaService.verify` completes it. Wrong codes count toward the identifier's lockout
like wrong passwords, and the time step of an accepted code is kept, so no code works twice.
"""

from __future__ import annotations

import hmac
import secrets as stdlib_secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from usermgmt.core import passwords, secrets, throttle
from usermgmt.core.config import Settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import AccountDisabled, Conflict, InvalidMfaCode, ValidationError
from usermgmt.core.ids import IdSource
from usermgmt.core.mfa_keys import SecretBox
from usermgmt.core.mfa_schemas import (
    MfaChallenge,
    MfaCodeIn,
    MfaDisableIn,
    MfaStatus,
    MfaVerifyIn,
    RecoveryCodes,
    TotpSetup,
)
from usermgmt.core.models import AuthSession, MfaRecoveryCode, MfaTotp, User
from usermgmt.core.models import MfaChallenge as ChallengeRow
from usermgmt.core.schemas import AuthResult, parse, user_out
from usermgmt.core.services import credentials, outbox
from usermgmt.core.services.base import ServiceBase, load_user

STEP_SECONDS = 30
DIGITS = 6
SKEW_STEPS = 1  # a code of the step before or after the current one is accepted too
RECOVERY_CODE_COUNT = 10
# 16 characters of 31 that cannot be mistaken for each other: 79 bits, so a plain digest
# (SHA-256) is safe to keep.
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
RECOVERY_CODE_LENGTH = 16
METHODS = ["totp", "recovery_code"]


class WrongCode(InvalidMfaCode):
    """A code that does not match (counts toward the lockout), unlike a spent challenge."""


def issue_challenge(
    s: Session,
    settings: Settings,
    user: User,
    identifier_key: str,
    *,
    now: datetime,
    ids: IdSource,
) -> MfaChallenge:
    """The second step of a login whose password was right (in the caller's transaction)."""
    raw = secrets.new_token()
    s.add(
        ChallengeRow(
            id=ids.new_uuid(),
            user_id=user.id,
            token_hash=secrets.digest(raw),
            identifier_key=identifier_key,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.mfa_token_ttl),
        )
    )
    return MfaChallenge(mfa_token=raw, methods=METHODS, expires_in=settings.mfa_token_ttl)


def must_enrol(settings: Settings, user: User) -> bool:
    """Whether the role policy makes this account enrol before it gets a full session."""
    required = settings.mfa_required_role_set
    return bool(required) and not user.mfa_enabled and bool(required & set(user.roles))


def _totp(secret: str):
    import pyotp  # imported by the second factor's callers only

    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def _digits(code: str) -> str:
    return "".join(code.split())


def _normalise_recovery(code: str) -> str:
    return "".join(c for c in code.lower() if c not in " -")


def new_recovery_code() -> str:
    raw = "".join(stdlib_secrets.choice(_RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4))


class MfaService(ServiceBase):
    def __init__(self, db, settings, keys, auth, **sources) -> None:
        super().__init__(db, settings, keys, **sources)  # clock, ids
        self.auth = auth
        self.box = SecretBox(settings)

    # ---- checking codes ---------------------------------------------------------

    def _matching_step(self, secret: str, code: str, last_step: int | None) -> int | None:
        """The time step (within the skew) whose code this is and that is newer than the
        last one used, or None."""
        code = _digits(code)
        if len(code) != DIGITS or not code.isdigit():
            return None
        totp = _totp(secret)
        current = totp.timecode(self.clock.now())
        for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
            if last_step is not None and step <= last_step:
                continue
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None

    def _use_step(self, s: Session, user_id: uuid.UUID, step: int, encrypted: str) -> None:
        """Record ``step`` as used, atomically: of two requests with one code one wins."""
        done = s.execute(
            update(MfaTotp)
            .where(
                MfaTotp.user_id == user_id,
                or_(MfaTotp.last_step.is_(None), MfaTotp.last_step < step),
            )
            .values(last_step=step, secret_encrypted=self.box.rotate(encrypted))
        ).rowcount
        if not done:
            raise WrongCode()

    def _use_recovery_code(self, s: Session, user_id: uuid.UUID, code: str) -> bool:
        digest = secrets.digest(_normalise_recovery(code))
        done = s.execute(
            update(MfaRecoveryCode)
            .where(
                MfaRecoveryCode.user_id == user_id,
                MfaRecoveryCode.code_hash == digest,
                MfaRecoveryCode.used_at.is_(None),
            )
            .values(used_at=self.clock.now())
        ).rowcount
        return bool(done)

    def _new_recovery_codes(self, s: Session, user_id: uuid.UUID) -> list[str]:
        s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user_id))
        now = self.clock.now()
        codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
        for code in codes:
            s.add(
                MfaRecoveryCode(
                    id=self.ids.new_uuid(),
                    user_id=user_id,
                    code_hash=secrets.digest(_normalise_recovery(code)),
                    created_at=now,
                )
            )
        return codes

    def _check_own_code(self, s: Session, user_id: uuid.UUID, code: str) -> str:
        """Accept the caller's TOTP code (or, failing that, an unused recovery code) inside
        ``s``; the method that matched, or InvalidMfaCode."""
        totp = s.get(MfaTotp, user_id, with_for_update=True)
        if totp is None or totp.confirmed_at is None:
            raise Conflict("No second factor is enabled for this account")
        secret = self.box.decrypt(totp.secret_encrypted)
        step = self._matching_step(secret, code, totp.last_step)
        if step is not None:
            self._use_step(s, user_id, step, totp.secret_encrypted)
            return "totp"
        if self._use_recovery_code(s, user_id, code):
            return "recovery_code"
        raise WrongCode()

    def _notify(self, s: Session, user: User, template: str) -> None:
        outbox.enqueue(
            s,
            self.settings,
            template,
            user.email,
            user_id=user.id,
            context={},
            now=self.clock.now(),
            ids=self.ids,
        )

    @staticmethod
    def _own_account(actor: Actor) -> uuid.UUID:
        """Only a signed-in person enrols (an operator has no account of its own)."""
        actor.require_authenticated("users:write")
        if actor.user_id is None:
            raise ValidationError("A second factor belongs to a signed-in user's own account")
        return actor.user_id

    # ---- enrolment ---------------------------------------------------------------

    def setup(self, actor: Actor, ctx: RequestContext) -> TotpSetup:
        """A new secret for the caller, inactive until confirmed (replaces an unconfirmed one)."""
        import pyotp
        import segno

        user_id = self._own_account(actor)
        secret = pyotp.random_base32()
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            if user.kind != "person":
                raise ValidationError("A service account signs in with API keys only")
            if user.mfa_enabled:
                raise Conflict("A second factor is already enabled; disable it first")
            row = s.get(MfaTotp, user_id)
            if row is None:
                row = MfaTotp(user_id=user_id)
                s.add(row)
            row.secret_encrypted = self.box.encrypt(secret)
            row.created_at = self.clock.now()
            row.confirmed_at = None
            row.last_step = None
            email = user.email
        uri = _totp(secret).provisioning_uri(name=email, issuer_name=self._issuer())
        qr_svg = segno.make(uri, error="m").svg_inline(scale=4, title="TOTP setup code")
        return TotpSetup(secret=secret, otpauth_uri=uri, qr_svg=qr_svg)

    def _issuer(self) -> str:
        url = self.settings.public_url.rstrip("/")
        return f"usermgmt ({urlsplit(url).netloc or url})"

    def confirm(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | MfaCodeIn
    ) -> RecoveryCodes:
        """Activate the secret from setup with a code from the app; answers the recovery
        codes (shown this once). A session held back by the role policy becomes full."""
        spec = parse(MfaCodeIn, data)
        user_id = self._own_account(actor)
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            totp = s.get(MfaTotp, user_id, with_for_update=True)
            if user.mfa_enabled:
                raise Conflict("A second factor is already enabled")
            if totp is None:
                raise Conflict("Start with POST /auth/mfa/totp/setup")
            step = self._matching_step(self.box.decrypt(totp.secret_encrypted), spec.code, None)
            if step is None:
                raise WrongCode()
            now = self.clock.now()
            totp.confirmed_at = now
            totp.last_step = step
            user.mfa_enabled = True
            user.updated_at = now
            codes = self._new_recovery_codes(s, user_id)
            if actor.session_id is not None:
                s.execute(
                    update(AuthSession)
                    .where(AuthSession.id == actor.session_id)
                    .values(mfa_pending=False)
                )
            self.record_event(
                s, actor, ctx, "user.mfa_enabled", user_id, {"mfa_enabled": _change(False, True)}
            )
            self._notify(s, user, "mfa_enabled")
        return RecoveryCodes(recovery_codes=codes)

    def disable(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | MfaDisableIn
    ) -> None:
        """Turn one's own second factor off: needs the password and a current code."""
        spec = parse(MfaDisableIn, data)
        user_id = self._own_account(actor)
        with self.db.read() as s:
            stored = load_user(s, user_id).password_hash
        if stored is None or not passwords.verify_password(spec.password, stored):
            raise ValidationError.for_field("password", "Password is wrong")
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            self._check_own_code(s, user_id, spec.code)
            self._remove(s, user)
            self.record_event(
                s, actor, ctx, "user.mfa_disabled", user_id, {"mfa_enabled": _change(True, False)}
            )
            self._notify(s, user, "mfa_disabled")

    def regenerate_recovery_codes(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | MfaCodeIn
    ) -> RecoveryCodes:
        """Ten new recovery codes for a current code; the old ones stop working."""
        spec = parse(MfaCodeIn, data)
        user_id = self._own_account(actor)
        with self.db.write() as s:
            load_user(s, user_id, for_update=True)
            self._check_own_code(s, user_id, spec.code)
            codes = self._new_recovery_codes(s, user_id)
            self.record_event(
                s, actor, ctx, "user.mfa_recovery_codes_regenerated", user_id, {"count": len(codes)}
            )
        return RecoveryCodes(recovery_codes=codes)

    def _remove(self, s: Session, user: User) -> None:
        s.execute(delete(MfaRecoveryCode).where(MfaRecoveryCode.user_id == user.id))
        s.execute(delete(MfaTotp).where(MfaTotp.user_id == user.id))
        s.execute(delete(ChallengeRow).where(ChallengeRow.user_id == user.id))
        user.mfa_enabled = False
        user.updated_at = self.clock.now()

    # ---- administration ------------------------------------------------------------

    def status(self, actor: Actor, user_id: str) -> MfaStatus:
        actor.require_admin("users:read")
        with self.db.read() as s:
            user = load_user(s, user_id)
            totp = s.get(MfaTotp, user.id)
            left = s.execute(
                select(func.count())
                .select_from(MfaRecoveryCode)
                .where(MfaRecoveryCode.user_id == user.id, MfaRecoveryCode.used_at.is_(None))
            ).scalar_one()
            return MfaStatus(
                user_id=user.id,
                email=user.email,
                mfa_enabled=user.mfa_enabled,
                enrolled_at=totp.confirmed_at if totp is not None else None,
                recovery_codes_left=left if user.mfa_enabled else 0,
            )

    def reset(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        """Remove a user's second factor (admin): the user's sessions end, a notice is sent."""
        actor.require_admin("users:write")
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            if not user.mfa_enabled and s.get(MfaTotp, user.id) is None:
                raise Conflict("This user has no second factor")
            was = user.mfa_enabled
            self._remove(s, user)
            revoked = credentials.revoke_sessions(s, user.id, "mfa_reset", now=self.clock.now())
            self.record_event(
                s,
                actor,
                ctx,
                "user.mfa_reset",
                user.id,
                {"mfa_enabled": _change(was, False), "sessions_revoked": revoked},
            )
            self._notify(s, user, "mfa_reset")

    # ---- the second step of a login -------------------------------------------------

    def verify(self, ctx: RequestContext, data: Mapping[str, Any] | MfaVerifyIn) -> AuthResult:
        """Complete a login with a TOTP code or a recovery code; the challenge is spent."""
        spec = parse(MfaVerifyIn, data)
        digest = secrets.digest(spec.mfa_token)
        with self.db.read() as s:
            challenge = s.execute(
                select(ChallengeRow).where(ChallengeRow.token_hash == digest)
            ).scalar_one_or_none()
            now = self.clock.now()
            if challenge is None or challenge.used_at is not None or challenge.expires_at <= now:
                raise InvalidMfaCode("The sign-in challenge is unknown, used or expired")
            key = challenge.identifier_key
            locked = throttle.current_lock(s, key, now)
            user = load_user(s, challenge.user_id, include_deleted=True)
        if locked is not None:
            self.auth.refuse_locked(locked)
        jwt_key = self.keys.jwt_key()
        try:
            with self.db.write() as s:
                claimed = s.execute(
                    update(ChallengeRow)
                    .where(ChallengeRow.id == challenge.id, ChallengeRow.used_at.is_(None))
                    .values(used_at=self.clock.now())
                ).rowcount
                if not claimed:
                    raise InvalidMfaCode("The sign-in challenge is unknown, used or expired")
                method = self._second_factor(s, user.id, spec)
                user = load_user(s, user.id, for_update=True, include_deleted=True)
                if not user.mfa_enabled:  # reset meanwhile
                    raise InvalidMfaCode("The sign-in challenge is unknown, used or expired")
                if user.deleted_at is not None or not user.is_active:
                    raise AccountDisabled()
                if user.is_locked(self.clock.now()):
                    self.auth.refuse_locked(user.locked_until)
                throttle.clear(s, key)
                now = self.clock.now()
                user.last_login_at = now
                auth_session, tokens = credentials.open_session(
                    s, self.settings, jwt_key, user, ctx, now=now, ids=self.ids
                )
                actor = Actor(
                    label=f"user:{user.email}",
                    user_id=user.id,
                    roles=frozenset(user.roles),
                    session_id=auth_session.id,
                )
                self.record_event(
                    s,
                    actor,
                    ctx,
                    "auth.login",
                    user.id,
                    {"session_id": str(auth_session.id), "mfa": method},
                )
                if method == "recovery_code":
                    self.record_event(s, actor, ctx, "user.mfa_recovery_code_used", user.id)
                    self._notify(s, user, "mfa_recovery_code_used")
                return AuthResult(user=user_out(user, now), tokens=tokens)
        except WrongCode:
            # The challenge's claim was rolled back: it stays usable until it expires, and
            # the failure counts toward the identifier's lockout like a wrong password.
            self.auth.record_failure(key, user, ctx)
            raise

    def _second_factor(self, s: Session, user_id: uuid.UUID, spec: MfaVerifyIn) -> str:
        if spec.recovery_code is not None:
            if not self._use_recovery_code(s, user_id, spec.recovery_code):
                raise WrongCode()
            return "recovery_code"
        totp = s.get(MfaTotp, user_id, with_for_update=True)
        if totp is None or totp.confirmed_at is None:
            raise WrongCode()
        secret = self.box.decrypt(totp.secret_encrypted)
        step = self._matching_step(secret, spec.code, totp.last_step)
        if step is None:
            raise WrongCode()
        self._use_step(s, user_id, step, totp.secret_encrypted)
        return "totp"


def _change(before: bool, after: bool) -> dict[str, bool]:
    return {"before": before, "after": after}
