"""Authentication: registration, login, token refresh, logout, password and email flows.

bcrypt runs outside any write transaction: a login holds no lock while it
hashes, so logins scale across cores and never queue behind each other on SQLite.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from usermgmt.core import passwords, secrets, throttle
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import (
    AccountDisabled,
    AccountLocked,
    AuthenticationError,
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    TokenReused,
    ValidationError,
)
from usermgmt.core.mfa_schemas import MfaChallenge
from usermgmt.core.models import AuthSession, RefreshToken, User, UserRole
from usermgmt.core.reads.user_rows import user_out_by_id
from usermgmt.core.schemas import (
    AuthResult,
    ChangePasswordIn,
    ForgotPasswordIn,
    LoginIn,
    RefreshIn,
    RefreshResult,
    RegisterIn,
    ResetPasswordIn,
    SelfUpdate,
    UserCreate,
    UserOut,
    VerifyEmailIn,
    normalise_identifier,
    parse,
    user_out,
)
from usermgmt.core.services import accounts, credentials, mfa, outbox
from usermgmt.core.services.base import ServiceBase, load_user
from usermgmt.core.services.users import UserService


class AuthService(ServiceBase):
    def __init__(self, db, settings, keys, users: UserService, **sources) -> None:
        super().__init__(db, settings, keys, **sources)  # clock, ids
        self.users = users

    # ---- registration and login -------------------------------------------------

    def register(self, ctx: RequestContext, data: Mapping[str, Any] | RegisterIn) -> AuthResult:
        if not self.settings.allow_registration:
            raise PermissionDenied("Registration is disabled")
        spec = parse(RegisterIn, data)
        password_hash = accounts.hash_new_password(self.settings, spec.password)
        create = UserCreate(
            email=spec.email,
            username=spec.username,
            first_name=spec.first_name,
            last_name=spec.last_name,
            roles=["user"],
        )
        key = self.keys.jwt_key()  # before the write lock: it may store a new key
        with self.db.write() as s:
            now = self.clock.now()
            user = accounts.insert_user(
                s, Actor.anonymous(), create, password_hash, now=now, ids=self.ids
            )
            actor = Actor(label=f"user:{user.email}", user_id=user.id, roles=frozenset({"user"}))
            accounts.queue_verification(s, self.settings, user, now=now, ids=self.ids)
            _session, tokens = credentials.open_session(
                s, self.settings, key, user, ctx, now=now, ids=self.ids
            )
            self.record_event(s, actor, ctx, "user.registered", user.id, {"user": _public(user)})
            return AuthResult(user=user_out(user, now), tokens=tokens)

    def login(
        self, ctx: RequestContext, data: Mapping[str, Any] | LoginIn
    ) -> AuthResult | MfaChallenge:
        """Check credentials; count failures per identifier whether or not it exists.

        An account with a second factor gets a challenge instead of tokens (its
        failures are cleared only once the code is right: usermgmt.core.services.mfa).
        An account the role policy makes enrol gets a session limited to enrolment.
        """
        spec = parse(LoginIn, data)
        identifier = normalise_identifier(spec.email or spec.username or "")
        if not identifier:
            raise ValidationError.for_field("email", "Email or username is required")
        key = throttle.identifier_key(identifier)
        column = User.email if "@" in identifier else User.username
        rounds = self.settings.bcrypt_rounds

        with self.db.read() as s:
            locked = throttle.current_lock(s, key, self.clock.now())
            user = s.execute(select(User).where(column == identifier)).unique()
            user = user.scalar_one_or_none()
        if locked is not None:
            raise _locked(locked)

        # A service account never logs in with a password (it has none to check).
        stored = user.password_hash if user is not None and user.kind == "person" else None
        ok = passwords.verify_password(spec.password, stored or passwords.dummy_hash(rounds))
        ok = ok and stored is not None
        if not ok:
            self.record_failure(key, user, ctx)
            raise InvalidCredentials()

        if user.deleted_at is not None or not user.is_active:
            raise AccountDisabled()
        if user.is_locked(self.clock.now()):
            raise _locked(user.locked_until, "Account is locked by an admin")
        new_hash = (
            passwords.hash_password(spec.password, rounds)
            if passwords.needs_rehash(stored, rounds)
            else None
        )
        jwt_key = self.keys.jwt_key()
        with self.db.write() as s:
            user = load_user(s, user.id, for_update=True)
            if user.password_hash != stored:  # changed while we were hashing
                raise InvalidCredentials()
            now = self.clock.now()
            if new_hash:
                user.password_hash = new_hash
            if user.mfa_enabled:
                return mfa.issue_challenge(s, self.settings, user, key, now=now, ids=self.ids)
            throttle.clear(s, key)
            user.last_login_at = now
            auth_session, tokens = credentials.open_session(
                s, self.settings, jwt_key, user, ctx, now=now, ids=self.ids
            )
            pending = mfa.must_enrol(self.settings, user)
            auth_session.mfa_pending = pending
            actor = _actor_for(user, auth_session.id)
            self.record_event(
                s,
                actor,
                ctx,
                "auth.login",
                user.id,
                {"session_id": str(auth_session.id), "rehashed": bool(new_hash)},
            )
            return AuthResult(
                user=user_out(user, now), tokens=tokens, mfa_enrolment_required=pending
            )

    def record_failure(self, key: str, user: User | None, ctx: RequestContext) -> None:
        """Count the failure; the identifier's lock refuses password logins, nothing else.

        The account itself is left alone (its ``locked_until`` is the admin lock):
        its sessions, refresh and API access stay. The failure that turns the lock
        on is audited on the account, so operators see it (``users unlock`` clears it).
        """
        s_ = self.settings
        with self.db.write() as s:
            failure = throttle.record_failure(
                s,
                self.db.dialect,
                key,
                s_.lockout_threshold,
                s_.lockout_minutes,
                self.clock.now(),
            )
            if failure.newly_locked and user is not None:
                self.record_event(
                    s,
                    Actor.system("system:lockout"),
                    ctx,
                    "user.login_blocked",
                    user.id,
                    {
                        "reason": "too many failed logins",
                        "failed_logins": failure.count,
                        "blocked_until": failure.locked_until,
                    },
                )
        if failure.locked_until is not None:
            raise _locked(failure.locked_until)

    def refuse_locked(self, until) -> None:
        raise _locked(until)

    # ---- tokens ------------------------------------------------------------

    def refresh(self, ctx: RequestContext, data: Mapping[str, Any] | RefreshIn) -> RefreshResult:
        """Rotate a refresh token. Reuse after the grace window revokes the whole family."""
        spec = parse(RefreshIn, data)
        key = self.keys.jwt_key()
        reused = False
        with self.db.write() as s:
            token = s.execute(
                select(RefreshToken)
                .where(RefreshToken.token_hash == secrets.digest(spec.refresh_token))
                .with_for_update()
            ).scalar_one_or_none()
            if token is None:
                raise AuthenticationError("Invalid refresh token")
            auth_session = s.execute(
                select(AuthSession).where(AuthSession.id == token.session_id).with_for_update()
            ).scalar_one()
            now = self.clock.now()
            if not auth_session.is_live(now) or token.expires_at <= now:
                raise AuthenticationError("Refresh token expired or revoked")
            user = load_user(s, auth_session.user_id, include_deleted=True)
            refusal = _account_refusal(user.deleted_at, user.is_active, user.locked_until, now)
            if refusal:
                raise AuthenticationError(refusal)

            successor = secrets.derive_successor(key, spec.refresh_token)
            if token.rotated_at is None:
                expires = now + timedelta(seconds=self.settings.refresh_token_ttl)
                new = RefreshToken(
                    id=self.ids.new_uuid(),
                    session_id=auth_session.id,
                    token_hash=secrets.digest(successor),
                    parent_id=token.id,
                    issued_at=now,
                    expires_at=expires,
                )
                s.add(new)
                s.flush()
                token.rotated_at = now
                token.successor_id = new.id
                auth_session.expires_at = expires
                auth_session.last_used_at = now
                self.record_event(
                    s,
                    _actor_for(user, auth_session.id),
                    ctx,
                    "session.refreshed",
                    user.id,
                    {"session_id": str(auth_session.id)},
                )
            elif now - token.rotated_at <= timedelta(seconds=self.settings.refresh_reuse_grace):
                pass  # a second tab refreshing at once: same successor
            else:
                auth_session.revoked_at = now
                auth_session.revoke_reason = "token_reused"
                self.record_event(
                    s,
                    Actor.system("system:reuse-detection"),
                    ctx,
                    "session.revoked",
                    user.id,
                    {"session_id": str(auth_session.id), "reason": "refresh token reused"},
                )
                reused = True
            tokens = None
            if not reused:
                tokens = credentials.tokens_for(
                    self.settings, key, user.id, auth_session.id, successor, now=now
                )
        if reused:  # raised after the commit, so the revocation sticks
            raise TokenReused()
        return RefreshResult(tokens=tokens)

    def authenticate_token(self, access_token: str) -> Actor:
        """Verify an access token and that its session and user are still live (one query)."""
        now = self.clock.now()
        claims = secrets.decode_access_token(self.keys.jwt_key(), access_token, now)
        with self.db.connect() as conn:
            rows = conn.execute(_TOKEN_CHECK, {"session_id": claims.session_id}).all()
        if not rows:
            raise AuthenticationError("Session not found")
        row = rows[0]
        # Only the holder of a token signed for this session gets this far: they
        # are told what is true of their session and account, nothing more.
        if row.user_id != claims.user_id:
            raise AuthenticationError("Session not found")
        if row.revoked_at is not None:
            raise AuthenticationError("Session revoked")
        if row.expires_at <= now:
            raise AuthenticationError("Session expired")
        refusal = _account_refusal(row.deleted_at, row.is_active, row.locked_until, now)
        if refusal:
            raise AuthenticationError(refusal)
        return Actor(
            label=f"user:{row.email}",
            user_id=row.user_id,
            roles=frozenset(r.role_name for r in rows if r.role_name is not None),
            session_id=claims.session_id,
            mfa_pending=row.mfa_pending,
        )

    def logout(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | None = None
    ) -> None:
        """Revoke the caller's session (and the one a given refresh token belongs to)."""
        from usermgmt.core.schemas import LogoutIn

        actor.require_authenticated()
        spec = parse(LogoutIn, data or {})
        with self.db.write() as s:
            ids = {actor.session_id} if actor.session_id else set()
            if spec.refresh_token:
                token = s.execute(
                    select(RefreshToken).where(
                        RefreshToken.token_hash == secrets.digest(spec.refresh_token)
                    )
                ).scalar_one_or_none()
                if token is not None:
                    ids.add(token.session_id)
            now = self.clock.now()
            for sid in ids:
                sess = s.get(AuthSession, sid, with_for_update=True)
                if sess is None or sess.user_id != actor.user_id or sess.revoked_at is not None:
                    continue
                sess.revoked_at = now
                sess.revoke_reason = "logout"
                self.record_event(
                    s,
                    actor,
                    ctx,
                    "session.revoked",
                    actor.user_id,
                    {"session_id": str(sid), "reason": "logout"},
                )

    # ---- self-service -------------------------------------------------------

    def me(self, actor: Actor) -> UserOut:
        """Who the caller is: any key may ask (a cron key scoped to maintenance alone
        still learns whose it is), unlike reading a user."""
        actor.require_authenticated()
        with self.db.connect() as conn:
            found = user_out_by_id(conn, actor.user_id, self.clock.now())
        if found is None:
            raise NotFound("User not found")
        return found

    def update_me(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | SelfUpdate
    ) -> UserOut:
        actor.require_authenticated()
        return self.users.update(actor, ctx, str(actor.user_id), parse(SelfUpdate, data))

    def change_password(
        self, actor: Actor, ctx: RequestContext, data: Mapping[str, Any] | ChangePasswordIn
    ) -> None:
        """Change one's own password; every other session is revoked."""
        actor.require_authenticated("users:write")
        spec = parse(ChangePasswordIn, data)
        with self.db.read() as s:
            stored = load_user(s, actor.user_id).password_hash
        if not passwords.verify_password(spec.current_password, stored):
            raise ValidationError.for_field("current_password", "Current password is wrong")
        passwords.check_policy(spec.new_password, "new_password")
        if spec.new_password == spec.current_password:
            raise ValidationError.for_field("new_password", "Must differ from the current one")
        new_hash = passwords.hash_password(spec.new_password, self.settings.bcrypt_rounds)
        with self.db.write() as s:
            user = load_user(s, actor.user_id, for_update=True)
            if user.password_hash != stored:
                raise ValidationError.for_field("current_password", "Password changed meanwhile")
            self._set_password(s, user, new_hash, keep=actor.session_id)
            self.record_event(
                s, actor, ctx, "user.password_changed", user.id, {"password": "changed"}
            )

    def _set_password(self, s: Session, user: User, new_hash: str, keep=None) -> int:
        now = self.clock.now()
        user.password_hash = new_hash
        user.password_changed_at = now
        user.updated_at = now
        revoked = credentials.revoke_sessions(s, user.id, "password_changed", now=now, keep=keep)
        outbox.enqueue(
            s,
            self.settings,
            "password_changed",
            user.email,
            user_id=user.id,
            context={},
            now=now,
            ids=self.ids,
        )
        return revoked

    def forgot_password(
        self, ctx: RequestContext, data: Mapping[str, Any] | ForgotPasswordIn
    ) -> None:
        """Always succeeds; sends a reset link only when an active account has that email."""
        spec = parse(ForgotPasswordIn, data)
        email = normalise_identifier(spec.email)
        with self.db.write() as s:
            now = self.clock.now()
            user = s.execute(select(User).where(User.email == email)).unique().scalar_one_or_none()
            if user is None or user.deleted_at is not None or not user.is_active:
                return
            if user.kind != "person":  # a service account has no password to reset
                return
            raw = credentials.issue_one_time(s, self.settings, user, "reset", now=now, ids=self.ids)
            outbox.enqueue(
                s,
                self.settings,
                "password_reset",
                user.email,
                user_id=user.id,
                context={"link": outbox.link(self.settings, "reset", raw), "token": raw},
                now=now,
                ids=self.ids,
            )
            self.record_event(s, Actor.anonymous(), ctx, "user.reset_requested", user.id)

    def reset_password(
        self, ctx: RequestContext, data: Mapping[str, Any] | ResetPasswordIn
    ) -> None:
        """Use a reset or invitation token (single use); every session is revoked."""
        spec = parse(ResetPasswordIn, data)
        passwords.check_policy(spec.new_password, "new_password")
        new_hash = passwords.hash_password(spec.new_password, self.settings.bcrypt_rounds)
        with self.db.write() as s:
            now = self.clock.now()
            token = credentials.consume_one_time(s, spec.token, ("reset", "invite"), now=now)
            user = load_user(s, token.user_id, for_update=True)
            if token.email != user.email:
                from usermgmt.core.errors import InvalidToken

                raise InvalidToken()
            if token.purpose == "invite" and user.email_verified_at is None:
                user.email_verified_at = now
            revoked = self._set_password(s, user, new_hash)
            self.record_event(
                s,
                Actor(label=f"user:{user.email}", user_id=user.id),
                ctx,
                "user.password_reset",
                user.id,
                {"password": "changed", "via": token.purpose, "sessions_revoked": revoked},
            )

    def verify_email(self, ctx: RequestContext, data: Mapping[str, Any] | VerifyEmailIn) -> None:
        spec = parse(VerifyEmailIn, data)
        with self.db.write() as s:
            now = self.clock.now()
            token = credentials.consume_one_time(s, spec.token, ("verify",), now=now)
            user = load_user(s, token.user_id, for_update=True)
            if token.email != user.email:
                from usermgmt.core.errors import InvalidToken

                raise InvalidToken()
            if user.email_verified_at is None:
                user.email_verified_at = now
                user.updated_at = user.email_verified_at
            self.record_event(
                s,
                Actor(label=f"user:{user.email}", user_id=user.id),
                ctx,
                "user.email_verified",
                user.id,
                {"email_verified": {"before": False, "after": True}},
            )

    def resend_verification(self, actor: Actor, ctx: RequestContext) -> None:
        """Queue a new verification mail (the previous link stops working)."""
        actor.require_authenticated("users:write")
        with self.db.write() as s:
            user = load_user(s, actor.user_id, for_update=True)
            if user.email_verified_at is not None:
                return
            accounts.queue_verification(s, self.settings, user, now=self.clock.now(), ids=self.ids)
            self.record_event(s, actor, ctx, "user.verification_sent", user.id)


# Session, user and roles of an access token in one round trip (one row per role).
_TOKEN_CHECK = (
    select(
        AuthSession.revoked_at,
        AuthSession.expires_at,
        AuthSession.mfa_pending,
        User.id.label("user_id"),
        User.email,
        User.deleted_at,
        User.is_active,
        User.locked_until,
        UserRole.role_name,
    )
    .join(User, User.id == AuthSession.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .where(AuthSession.id == bindparam("session_id", type_=AuthSession.id.type))
)


def _actor_for(user: User, session_id) -> Actor:
    return Actor(
        label=f"user:{user.email}",
        user_id=user.id,
        roles=frozenset(user.roles),
        session_id=session_id,
    )


def _locked(
    until, message: str = "Too many failed logins with this identifier; try again later"
) -> AccountLocked:
    when = until.isoformat().replace("+00:00", "Z")
    return AccountLocked(message, details={"locked_until": when})


def _account_refusal(deleted_at, is_active: bool, locked_until, now) -> str | None:
    """Why a live session's account may not act now, or None (failed logins never count)."""
    if deleted_at is not None:
        return "Account deleted"
    if not is_active:
        return "Account deactivated"
    if locked_until is not None and locked_until > now:
        return "Account locked by an admin"
    return None


def _public(user: User) -> dict[str, Any]:
    return {"email": user.email, "username": user.username, "roles": user.roles}
