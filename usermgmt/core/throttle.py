"""Failed-login counting per submitted identifier, atomic on both databases.

The key is a SHA-256 of the lower-cased identifier, so the table never holds the
emails an attacker tried. Counting uses one ``INSERT … ON CONFLICT DO UPDATE …
RETURNING``: concurrent failures are all counted, none lost.

The lock this keeps refuses password logins with that identifier only. It is not
the account's ``locked_until`` (the admin lock): anyone can fail logins for any
email, so failures must never end or refuse the owner's live sessions.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from usermgmt.core.db import upsert
from usermgmt.core.models import LoginThrottle


def identifier_key(identifier: str) -> str:
    return hashlib.sha256(identifier.strip().lower().encode("utf-8")).hexdigest()


def current_lock(session: Session, key: str, now: datetime) -> datetime | None:
    """Until when the identifier ``key`` is locked at ``now`` (None when it is not)."""
    locked = session.execute(
        select(LoginThrottle.locked_until).where(LoginThrottle.key == key)
    ).scalar_one_or_none()
    return locked if locked is not None and locked > now else None


class Failure(NamedTuple):
    count: int
    locked_until: datetime | None  # set while the identifier is locked
    newly_locked: bool  # this failure is the one that turned the lock on


def record_failure(
    session: Session, dialect: str, key: str, threshold: int, lock_minutes: int, now: datetime
) -> Failure:
    """Count one failure at ``now``; says whether the identifier is locked, and until when."""
    window_start = now - timedelta(minutes=lock_minutes)
    insert = upsert(dialect)
    stmt = insert(LoginThrottle).values(key=key, failed_count=1, last_failed_at=now)
    table = LoginThrottle.__table__
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            # A failure long after the previous one starts a new window.
            "failed_count": case(
                (table.c.last_failed_at < window_start, 1),
                else_=table.c.failed_count + 1,
            ),
            "last_failed_at": now,
        },
    ).returning(table.c.failed_count, table.c.locked_until)
    count, locked_until = session.execute(stmt).one()
    if locked_until is not None and locked_until > now:
        return Failure(count, locked_until, False)
    if count >= threshold:
        locked_until = now + timedelta(minutes=lock_minutes)
        session.execute(
            update(LoginThrottle).where(LoginThrottle.key == key).values(locked_until=locked_until)
        )
        return Failure(count, locked_until, True)
    return Failure(count, None, False)


def clear(session: Session, key: str) -> None:
    session.execute(
        update(LoginThrottle)
        .where(LoginThrottle.key == key)
        .values(failed_count=0, locked_until=None)
    )


def clear_identifiers(session: Session, identifiers: list[str], now: datetime) -> int:
    """Forget the failures of these identifiers; returns how many were locked at ``now``."""
    keys = [identifier_key(i) for i in identifiers]
    locked = session.execute(
        select(LoginThrottle.key).where(
            LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now
        )
    ).all()
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
    return len(locked)
