"""Set statements for a bulk action on many users (``UserService.bulk``).

One user's lock, unlock or sign-out is a handful of round trips (load it for
update, change it, its sessions, the audit head and event); for a thousand
users those round trips are the cost. Each function here does the same for
every user it can in a few statements (one UPDATE of the users, one of their
sessions, one multi-row INSERT of their audit events), with the audit events a
single call writes, and returns the ids it left for the one-by-one path: those
not found (which that path reports) and admins where the last-admin rule must
be checked user by user.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from usermgmt.core import audit, throttle
from usermgmt.core.models import AuthSession, LoginThrottle, User, UserRole
from usermgmt.core.results import BulkOutcome
from usermgmt.core.services.base import parse_uuid

Record = Callable[[Session, Iterable[audit.PendingEvent]], Any]  # appends audit events
_QUIET = {"synchronize_session": False}  # no ORM objects of these rows are loaded


def _wanted(user_ids: Sequence[str]) -> dict[uuid.UUID, str]:
    return {uid: ref for ref in user_ids if (uid := parse_uuid(ref)) is not None}


def _finish(
    user_ids: Sequence[str], wanted: dict[uuid.UUID, str], done: set, outcome: BulkOutcome
) -> list[str]:
    outcome.done.extend(ref for uid, ref in wanted.items() if uid in done)
    return [ref for ref in user_ids if parse_uuid(ref) not in done]


def _revoke_sessions(s: Session, ids: list[uuid.UUID], reason: str, now: datetime) -> Counter:
    """Revoke the live sessions of ``ids``; how many each had."""
    revoked = s.execute(
        update(AuthSession)
        .where(AuthSession.user_id.in_(ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
        .returning(AuthSession.user_id),
        execution_options=_QUIET,
    ).scalars()
    return Counter(revoked)


def lock(
    s: Session,
    record: Record,
    user_ids: Sequence[str],
    until: datetime,
    now: datetime,
    outcome: BulkOutcome,
) -> list[str]:
    """Lock the live non-admins of ``user_ids`` until ``until``; their sessions end."""
    wanted = _wanted(user_ids)
    if not wanted:
        return list(user_ids)
    admins = set(
        s.execute(
            select(UserRole.user_id).where(
                UserRole.user_id.in_(wanted), UserRole.role_name == "admin"
            )
        ).scalars()
    )
    found = s.execute(
        select(User.id, User.locked_until)
        .where(User.id.in_(wanted.keys() - admins), User.deleted_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not found:
        return list(user_ids)
    ids = [row.id for row in found]
    s.execute(
        update(User).where(User.id.in_(ids)).values(locked_until=until, updated_at=now),
        execution_options=_QUIET,
    )
    _revoke_sessions(s, ids, "locked", now)
    after = audit.redact({"locked_until": until})
    record(
        s,
        (
            audit.PendingEvent(
                "user.locked",
                row.id,
                audit.diff(audit.redact({"locked_until": row.locked_until}), after),
            )
            for row in found
        ),
    )
    return _finish(user_ids, wanted, set(ids), outcome)


def unlock(
    s: Session, record: Record, user_ids: Sequence[str], now: datetime, outcome: BulkOutcome
) -> list[str]:
    """Unlock the live users of ``user_ids`` and forget the failed sign-ins of their
    emails and usernames."""
    wanted = _wanted(user_ids)
    if not wanted:
        return list(user_ids)
    found = s.execute(
        select(User.id, User.locked_until, User.email, User.username)
        .where(User.id.in_(wanted), User.deleted_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if not found:
        return list(user_ids)
    keys = {
        row.id: [throttle.identifier_key(i) for i in (row.email, row.username) if i]
        for row in found
    }
    every_key = [k for user_keys in keys.values() for k in user_keys]
    blocked = set(
        s.execute(
            select(LoginThrottle.key).where(
                LoginThrottle.key.in_(every_key), LoginThrottle.locked_until > now
            )
        ).scalars()
    )
    s.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(every_key)))
    ids = [row.id for row in found]
    s.execute(
        update(User).where(User.id.in_(ids)).values(locked_until=None, updated_at=now),
        execution_options=_QUIET,
    )

    def changes(row) -> dict[str, Any]:
        diff = audit.diff(audit.redact({"locked_until": row.locked_until}), {"locked_until": None})
        if blocks := sum(k in blocked for k in keys[row.id]):
            diff["login_blocks_cleared"] = blocks
        return diff

    record(s, (audit.PendingEvent("user.unlocked", row.id, changes(row)) for row in found))
    return _finish(user_ids, wanted, set(ids), outcome)


def sign_out(
    s: Session, record: Record, user_ids: Sequence[str], now: datetime, outcome: BulkOutcome
) -> list[str]:
    """Revoke every live session of the users of ``user_ids`` (deleted ones too)."""
    wanted = _wanted(user_ids)
    if not wanted:
        return list(user_ids)
    ids = list(s.execute(select(User.id).where(User.id.in_(wanted)).order_by(User.id)).scalars())
    if not ids:
        return list(user_ids)
    counts = _revoke_sessions(s, ids, "revoked_by_admin", now)
    record(
        s,
        (
            audit.PendingEvent("session.revoked", uid, {"all": True, "count": counts[uid]})
            for uid in ids
        ),
    )
    return _finish(user_ids, wanted, set(ids), outcome)
