"""Rules that protect the system from locking itself out."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from usermgmt.core.errors import Conflict
from usermgmt.core.models import User, UserRole


def ensure_other_active_admin(session: Session, user: User, action: str, *, now: datetime) -> None:
    """Refuse ``action`` on the last active admin (409), as things stand at ``now``.

    Locks every admin's user row first (PostgreSQL), so two concurrent
    demotions of the last two admins cannot both pass.
    """
    if "admin" not in user.roles or not is_active_account(user, now):
        return
    admins = session.execute(
        select(User.id, User.is_active, User.deleted_at, User.locked_until)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_name == "admin")
        .with_for_update(of=User)
    ).all()
    others = [
        row
        for row in admins
        if row.id != user.id
        and row.is_active
        and row.deleted_at is None
        and not (row.locked_until and row.locked_until > now)
    ]
    if not others:
        raise Conflict(f"Cannot {action} the last active admin")


def is_active_account(user: User, now: datetime) -> bool:
    return user.is_active and user.deleted_at is None and not user.is_locked(now)
