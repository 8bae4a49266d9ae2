"""Account operations that several services perform inside their own unit of work.

Creating an account (admin creation, registration), queueing an address
verification (an email change, registration, a resend), setting roles (the role
operations, ``users ensure``, an import) and the audited view of a user are the
same rules wherever they run: each lives here once, and a service calls it
with the session of its transaction, its present (``now``) and its id source
(``ids``). Callers check permissions and audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from usermgmt.core import audit, passwords
from usermgmt.core.config import Settings
from usermgmt.core.context import Actor
from usermgmt.core.errors import Conflict, EmailExists, UsernameExists, ValidationError
from usermgmt.core.ids import IdSource
from usermgmt.core.models import Profile, User, UserRole
from usermgmt.core.schemas import ProfileIn, UserCreate
from usermgmt.core.services import credentials, outbox
from usermgmt.core.services.guards import ensure_other_active_admin

PROFILE_FIELDS = ("phone", "bio", "avatar_url", "timezone", "locale")
PROFILE_DEFAULTS = {"timezone": "UTC", "locale": "en"}


def snapshot(user: User) -> dict[str, Any]:
    """The audited view of a user (never the password hash)."""
    profile = user.profile
    data = {
        "email": user.email,
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": user.is_active,
        "email_verified": user.email_verified_at is not None,
        "roles": user.roles,
        "locked_until": user.locked_until,
        "deleted_at": user.deleted_at,
    }
    if profile is not None:
        data.update({f"profile.{f}": getattr(profile, f) for f in PROFILE_FIELDS})
    return audit.redact(data)


def hash_new_password(settings: Settings, password: str | None) -> str | None:
    """The bcrypt hash of a new password that meets the policy (None for none).

    Call it before the write transaction: hashing holds no lock.
    """
    if password is None:
        return None
    passwords.check_policy(password)
    return passwords.hash_password(password, settings.bcrypt_rounds)


def check_unique(s: Session, email: str | None, username: str | None, exclude: Any = None) -> None:
    """EmailExists / UsernameExists unless no other user (than ``exclude``) has them."""
    if email is not None:
        stmt = select(User.id).where(User.email == email)
        if exclude is not None:
            stmt = stmt.where(User.id != exclude)
        if s.execute(stmt).first():
            raise EmailExists()
    if username is not None:
        stmt = select(User.id).where(User.username == username)
        if exclude is not None:
            stmt = stmt.where(User.id != exclude)
        if s.execute(stmt).first():
            raise UsernameExists()


def insert_user(
    s: Session,
    actor: Actor,
    spec: UserCreate,
    password_hash: str | None,
    *,
    now: datetime,
    ids: IdSource,
) -> User:
    """Add the account ``spec`` describes, with its profile and roles (granted by ``actor``)."""
    check_unique(s, spec.email, spec.username)
    user = User(
        id=ids.new_uuid(),
        email=spec.email,
        username=spec.username,
        first_name=spec.first_name,
        last_name=spec.last_name,
        password_hash=password_hash,
        password_changed_at=now if password_hash else None,
        is_active=spec.is_active,
        kind=spec.kind,
        mfa_enabled=False,
        email_verified_at=now if spec.email_verified else None,
        created_at=now,
        updated_at=now,
    )
    user.profile = Profile(**_profile_values(spec.profile))
    user.role_links = [
        UserRole(role_name=r, granted_by=actor.label, granted_at=now)
        for r in sorted(set(spec.roles))
    ]
    s.add(user)
    s.flush()  # a race on email or username: EmailExists etc. (usermgmt.core.db.errors)
    return user


def queue_verification(
    s: Session, settings: Settings, user: User, *, now: datetime, ids: IdSource
) -> None:
    """Mail the user a link that verifies their current address (earlier links stop working).

    A service account is never mailed."""
    if is_service(user):
        return
    raw = credentials.issue_one_time(s, settings, user, "verify", now=now, ids=ids)
    outbox.enqueue(
        s,
        settings,
        "verify_email",
        user.email,
        user_id=user.id,
        context={"link": outbox.link(settings, "verify", raw), "token": raw},
        now=now,
        ids=ids,
    )


def is_service(user: User) -> bool:
    """A service account: no password, no mail, acts through API keys."""
    return user.kind == "service"


def check_service_account(spec: UserCreate) -> None:
    """A service account is named by a username and never has a password."""
    if spec.kind != "service":
        return
    if spec.username is None:
        raise ValidationError.for_field("username", "A service account needs a username")
    if spec.password is not None:
        raise ValidationError.for_field(
            "password", "A service account has no password; it acts through API keys"
        )


def refuse_password(user: User) -> None:
    """Conflict for a service account, which never has a password (nor a reset link)."""
    if is_service(user):
        raise Conflict("A service account has no password; it acts through API keys")


def set_roles(s: Session, actor: Actor, user: User, roles: set[str], *, now: datetime) -> None:
    """Make the user's roles exactly ``roles``; the last active admin keeps theirs."""
    current = set(user.roles)
    if "admin" in current and "admin" not in roles:
        ensure_other_active_admin(s, user, "demote", now=now)
    for link in list(user.role_links):
        if link.role_name not in roles:
            user.role_links.remove(link)
    for name in sorted(roles - current):
        user.role_links.append(
            UserRole(user_id=user.id, role_name=name, granted_by=actor.label, granted_at=now)
        )


def _profile_values(profile: ProfileIn | None) -> dict[str, Any]:
    values = profile.model_dump(exclude_none=True) if profile else {}
    return {**PROFILE_DEFAULTS, **values}
