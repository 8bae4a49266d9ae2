"""Users: create, ensure, change, soft delete, restore, lock, set password.

The write path of users; their reads are usermgmt.core.reads.users.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from usermgmt.core import audit, passwords, throttle
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from usermgmt.core.models import Profile, User
from usermgmt.core.results import BULK_ACTIONS, BulkAction, BulkFailure, BulkOutcome
from usermgmt.core.schemas import (
    SelfUpdate,
    UserCreate,
    UserOut,
    UserPatch,
    UserReplace,
    parse,
    user_out,
)
from usermgmt.core.services import bulk, credentials, outbox
from usermgmt.core.services.accounts import (
    PROFILE_FIELDS,
    check_service_account,
    check_unique,
    hash_new_password,
    insert_user,
    is_service,
    queue_verification,
    refuse_password,
    set_roles,
    snapshot,
)
from usermgmt.core.services.api_keys import revoke_keys
from usermgmt.core.services.base import ServiceBase, load_user, parse_uuid
from usermgmt.core.services.guards import ensure_other_active_admin
from usermgmt.core.services.sessions import sign_out

# An admin lock without a duration lasts until someone unlocks the account.
LOCKED_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
EnsureOutcome = Literal["created", "updated", "unchanged"]
BULK_LIMIT = 1000  # users per bulk call: one transaction, row locks held to its end


def _check_minutes(minutes: int | None) -> None:
    if minutes is not None and not 1 <= minutes <= 10_000_000:
        raise ValidationError.for_field("minutes", "must be between 1 and 10000000")


class UserService(ServiceBase):
    """Every change to users; reads are usermgmt.core.reads.users.UserReads."""

    # ---- create ------------------------------------------------------------

    def create(
        self, actor: Actor, ctx: RequestContext, data: UserCreate | Mapping[str, Any]
    ) -> UserOut:
        """Admin creation. Without a password the user gets an invitation link."""
        actor.require_admin("users:write")
        spec = parse(UserCreate, data)
        check_service_account(spec)
        password_hash = hash_new_password(self.settings, spec.password)
        with self.db.write() as s:
            now = self.clock.now()
            user = insert_user(s, actor, spec, password_hash, now=now, ids=self.ids)
            if spec.password is None and not is_service(user):
                raw = credentials.issue_one_time(
                    s, self.settings, user, "invite", now=now, ids=self.ids
                )
                outbox.enqueue(
                    s,
                    self.settings,
                    "invitation",
                    user.email,
                    user_id=user.id,
                    context={
                        "link": outbox.link(self.settings, "invite", raw),
                        "token": raw,
                    },
                    now=now,
                    ids=self.ids,
                )
            self.record_event(s, actor, ctx, "user.created", user.id, {"user": snapshot(user)})
            return user_out(user, now)

    def ensure(
        self, actor: Actor, ctx: RequestContext, data: UserCreate | Mapping[str, Any]
    ) -> tuple[EnsureOutcome, UserOut]:
        """Idempotent: create, or update to match what was given, or leave as is.

        Only fields present in ``data`` are compared; roles, when given, must
        match exactly. A given password is set only if the current one differs.
        """
        actor.require_admin("users:write")
        raw = dict(data) if isinstance(data, Mapping) else data.model_dump(exclude_unset=True)
        spec = parse(UserCreate, raw)
        given = set(raw)
        with self.db.read() as s:
            existing = s.execute(select(User).where(User.email == spec.email)).unique()
            existing = existing.scalar_one_or_none()
            password_differs = existing is not None and (
                spec.password is not None
                and not passwords.verify_password(spec.password, existing.password_hash)
            )
        if existing is None:
            return "created", self.create(actor, ctx, spec)
        if password_differs:
            refuse_password(existing)
        new_hash = hash_new_password(self.settings, spec.password) if password_differs else None
        with self.db.write() as s:
            now = self.clock.now()
            user = load_user(s, existing.id, for_update=True, include_deleted=True)
            before = snapshot(user)
            changes: dict[str, Any] = {}
            for field in ("username", "first_name", "last_name", "is_active"):
                if field in given and getattr(user, field) != getattr(spec, field):
                    changes[field] = getattr(spec, field)
            if "username" in changes:
                check_unique(s, None, spec.username, exclude=user.id)
            if "is_active" in changes and not spec.is_active:
                ensure_other_active_admin(s, user, "deactivate", now=now)
                credentials.revoke_sessions(s, user.id, "deactivated", now=now)
            for field, value in changes.items():
                setattr(user, field, value)
            if "email_verified" in given and spec.email_verified != user.email_verified:
                user.email_verified_at = now if spec.email_verified else None
                changes["email_verified"] = spec.email_verified
            if "roles" in given and set(spec.roles) != set(user.roles):
                set_roles(s, actor, user, set(spec.roles), now=now)
                changes["roles"] = sorted(spec.roles)
            if user.deleted_at is not None:
                user.deleted_at = None
                changes["deleted_at"] = None
            if not changes and new_hash is None:
                return "unchanged", user_out(user, now)
            user.updated_at = now
            if changes:
                s.flush()
                self.record_event(
                    s, actor, ctx, "user.updated", user.id, audit.diff(before, snapshot(user))
                )
            if new_hash is not None:  # audited and notified as set_password does
                self._replace_password(s, actor, ctx, user, new_hash)
            return "updated", user_out(user, now)

    # ---- change ------------------------------------------------------------

    def update(
        self, actor: Actor, ctx: RequestContext, user_id: str, data: Mapping[str, Any] | Any
    ) -> UserOut:
        """PATCH: partial change. A user editing themselves may change names and profile only."""
        uid = parse_uuid(user_id)
        if uid is None:
            raise NotFound("User not found")
        if actor.is_self(uid) and not actor.is_operator:
            actor.require_scope("users:write")
            spec: SelfUpdate = parse(SelfUpdate, data)
        else:
            actor.require_moderator("users:write")
            spec = parse(UserPatch, data)
        fields = spec.model_dump(exclude_unset=True)
        with self.db.write() as s:
            user = load_user(s, uid, for_update=True)
            if not actor.is_admin and not actor.is_self(uid) and "admin" in user.roles:
                raise PermissionDenied("Only an admin may change an admin's account")
            return self._apply(s, actor, ctx, user, fields)

    def replace(
        self, actor: Actor, ctx: RequestContext, user_id: str, data: Mapping[str, Any] | Any
    ) -> UserOut:
        """PUT: every editable field replaced; omitted optional fields are cleared."""
        actor.require_admin("users:write")
        spec = parse(UserReplace, data)
        fields = spec.model_dump()
        fields["profile"] = {f: fields["profile"].get(f) for f in PROFILE_FIELDS}
        fields["profile"]["timezone"] = fields["profile"]["timezone"] or "UTC"
        fields["profile"]["locale"] = fields["profile"]["locale"] or "en"
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            return self._apply(s, actor, ctx, user, fields)

    def _apply(
        self, s: Session, actor: Actor, ctx: RequestContext, user: User, fields: dict[str, Any]
    ) -> UserOut:
        now = self.clock.now()
        before = snapshot(user)
        old_email = user.email
        if "email" in fields and fields["email"] != user.email:
            check_unique(s, fields["email"], None, exclude=user.id)
            user.email = fields["email"]
            if "email_verified" not in fields:
                user.email_verified_at = None
        if "username" in fields and fields["username"] != user.username:
            check_unique(s, None, fields["username"], exclude=user.id)
            user.username = fields["username"]
        for name in ("first_name", "last_name"):
            if name in fields:
                setattr(user, name, fields[name])
        if "is_active" in fields and fields["is_active"] != user.is_active:
            if not fields["is_active"]:
                ensure_other_active_admin(s, user, "deactivate", now=now)
                credentials.revoke_sessions(s, user.id, "deactivated", now=now)
            user.is_active = fields["is_active"]
        if "email_verified" in fields and fields["email_verified"] != user.email_verified:
            user.email_verified_at = now if fields["email_verified"] else None
        if fields.get("profile") is not None:
            if user.profile is None:
                user.profile = Profile()
            for name, value in fields["profile"].items():
                setattr(user.profile, name, value)
        changes = audit.diff(before, snapshot(user))
        if not changes:
            return user_out(user, now)
        user.updated_at = now
        s.flush()
        if user.email != old_email and not is_service(user):
            outbox.enqueue(
                s,
                self.settings,
                "email_changed",
                old_email,
                user_id=user.id,
                context={"old_email": old_email, "new_email": user.email},
                now=now,
                ids=self.ids,
            )
            if user.email_verified_at is None:
                queue_verification(s, self.settings, user, now=now, ids=self.ids)
        self.record_event(s, actor, ctx, "user.updated", user.id, changes)
        return user_out(user, now)

    def delete(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        """Soft delete: the row stays (restorable, email stays taken), sessions are revoked."""
        actor.require_admin("users:write")
        with self.db.write() as s:
            self._delete(s, actor, ctx, user_id, self.clock.now())

    def _delete(
        self, s: Session, actor: Actor, ctx: RequestContext, user_id: str, now: datetime
    ) -> None:
        user = load_user(s, user_id, for_update=True)
        ensure_other_active_admin(s, user, "delete", now=now)
        user.deleted_at = now
        user.updated_at = user.deleted_at
        revoked = credentials.revoke_sessions(s, user.id, "deleted", now=now)
        changes = {"sessions_revoked": revoked}
        keys = revoke_keys(s, user.id, "owner_deleted", now=now)
        if keys:
            changes["api_keys_revoked"] = keys
        self.record_event(s, actor, ctx, "user.deleted", user.id, changes)

    def restore(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut:
        actor.require_admin("users:write")
        with self.db.write() as s:
            return self._restore(s, actor, ctx, user_id, self.clock.now())

    def _restore(
        self, s: Session, actor: Actor, ctx: RequestContext, user_id: str, now: datetime
    ) -> UserOut:
        user = load_user(s, user_id, for_update=True, include_deleted=True)
        if user.deleted_at is None:
            raise Conflict("User is not deleted")
        user.deleted_at = None
        user.updated_at = now
        self.record_event(s, actor, ctx, "user.restored", user.id)
        return user_out(user, now)

    def lock(
        self, actor: Actor, ctx: RequestContext, user_id: str, minutes: int | None = None
    ) -> UserOut:
        """Lock the account (until unlocked, or for ``minutes``); its sessions are revoked."""
        actor.require_admin("users:write")
        _check_minutes(minutes)
        with self.db.write() as s:
            return self._lock(s, actor, ctx, user_id, self.clock.now(), minutes)

    def _lock(
        self,
        s: Session,
        actor: Actor,
        ctx: RequestContext,
        user_id: str,
        now: datetime,
        minutes: int | None = None,
    ) -> UserOut:
        user = load_user(s, user_id, for_update=True)
        ensure_other_active_admin(s, user, "lock", now=now)
        until = now + timedelta(minutes=minutes) if minutes else LOCKED_FOREVER
        before = snapshot(user)
        user.locked_until = until
        user.updated_at = now
        credentials.revoke_sessions(s, user.id, "locked", now=now)
        self.record_event(s, actor, ctx, "user.locked", user.id, audit.diff(before, snapshot(user)))
        return user_out(user, now)

    def unlock(self, actor: Actor, ctx: RequestContext, user_id: str) -> UserOut:
        """Clear the account lock and the failed-login counters of its email and username."""
        actor.require_admin("users:write")
        with self.db.write() as s:
            return self._unlock(s, actor, ctx, user_id, self.clock.now())

    def _unlock(
        self, s: Session, actor: Actor, ctx: RequestContext, user_id: str, now: datetime
    ) -> UserOut:
        user = load_user(s, user_id, for_update=True)
        before = snapshot(user)
        user.locked_until = None
        user.updated_at = now
        identifiers = [user.email, user.username] if user.username else [user.email]
        blocks = throttle.clear_identifiers(s, identifiers, now)
        changes = audit.diff(before, snapshot(user))
        if blocks:
            changes["login_blocks_cleared"] = blocks
        self.record_event(s, actor, ctx, "user.unlocked", user.id, changes)
        return user_out(user, now)

    def bulk(
        self,
        actor: Actor,
        ctx: RequestContext,
        action: BulkAction,
        user_ids: Sequence[str],
        *,
        minutes: int | None = None,
    ) -> BulkOutcome:
        """``action`` (lock, unlock, delete, restore, sign_out) on up to BULK_LIMIT users
        in one transaction: lock, unlock and sign_out first by set statements
        (``services.bulk``), then what is left one user at a time, each in a savepoint:
        one that cannot be changed (gone, not deleted, the last active admin) is
        reported in ``failed``, the others are changed. Each change is audited as its
        single call would audit it."""
        actor.require_admin("sessions:manage" if action == "sign_out" else "users:write")
        if action not in BULK_ACTIONS:
            raise ValidationError.for_field("action", f"must be one of {', '.join(BULK_ACTIONS)}")
        if len(user_ids) > BULK_LIMIT:
            raise ValidationError.for_field("user_ids", f"at most {BULK_LIMIT} at once")
        if action == "lock":
            _check_minutes(minutes)
        outcome = BulkOutcome()
        with self.db.write() as s:
            now = self.clock.now()
            record = lambda s, events: self.record_events(s, actor, ctx, events)  # noqa: E731
            if action == "lock":
                until = now + timedelta(minutes=minutes) if minutes else LOCKED_FOREVER
                user_ids = bulk.lock(s, record, user_ids, until, now, outcome)
            elif action == "unlock":
                user_ids = bulk.unlock(s, record, user_ids, now, outcome)
            elif action == "sign_out":
                user_ids = bulk.sign_out(s, record, user_ids, now, outcome)
            for user_id in user_ids:
                try:
                    with s.begin_nested():
                        if action == "lock":
                            self._lock(s, actor, ctx, user_id, now, minutes)
                        elif action == "unlock":
                            self._unlock(s, actor, ctx, user_id, now)
                        elif action == "delete":
                            self._delete(s, actor, ctx, user_id, now)
                        elif action == "restore":
                            self._restore(s, actor, ctx, user_id, now)
                        else:
                            user = load_user(s, user_id, include_deleted=True)
                            sign_out(self, s, actor, ctx, user.id, now)
                except (NotFound, Conflict) as exc:
                    outcome.failed.append(BulkFailure(str(user_id), exc.code, exc.message))
                else:
                    outcome.done.append(str(user_id))
        return outcome

    def set_password(self, actor: Actor, ctx: RequestContext, user_id: str, password: str) -> None:
        """Operator sets a password: policy applies, all sessions are revoked, user is told."""
        actor.require_admin("users:write")
        new_hash = hash_new_password(self.settings, password)
        with self.db.write() as s:
            user = load_user(s, user_id, for_update=True)
            refuse_password(user)
            self._replace_password(s, actor, ctx, user, new_hash)

    def _replace_password(
        self, s: Session, actor: Actor, ctx: RequestContext, user: User, new_hash: str
    ) -> None:
        """An operator's new password (set-password, ensure): sessions end, the user is told."""
        now = self.clock.now()
        user.password_hash = new_hash
        user.password_changed_at = user.updated_at = now
        revoked = credentials.revoke_sessions(s, user.id, "password_set", now=now)
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
        self.record_event(
            s,
            actor,
            ctx,
            "user.password_set",
            user.id,
            {"password": "changed", "sessions_revoked": revoked},
        )

    def send_reset_link(self, actor: Actor, ctx: RequestContext, user_id: str) -> None:
        """Operator sends a password-reset link to the user's email."""
        actor.require_admin("users:write")
        with self.db.write() as s:
            now = self.clock.now()
            user = load_user(s, user_id)
            refuse_password(user)
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
            self.record_event(s, actor, ctx, "user.reset_requested", user.id)
