"""What every service shares: the database, the settings, the signing keys, the clock and
the id source."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from usermgmt.core import audit, secrets
from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.config import Settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.errors import Conflict, NotFound
from usermgmt.core.ids import RANDOM_IDS, IdSource
from usermgmt.core.models import Setting, User

JWT_SECRET_KEY = "jwt_secret"


class KeyRing:
    """The JWT secret: from configuration, or generated once and kept in the database.

    Every server sharing one database therefore signs with the same key. The
    value never changes once stored, so caching it in the process is safe.
    """

    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._configured = settings.jwt_secret
        self._cached: bytes | None = None
        self._lock = threading.Lock()

    def jwt_key(self) -> bytes:
        if self._configured is not None:
            return self._configured.get_secret_value().encode("utf-8")
        if self._cached is None:
            with self._lock:
                if self._cached is None:
                    self._cached = self._load_or_create().encode("utf-8")
        return self._cached

    def _load_or_create(self) -> str:
        with self._db.read() as s:
            row = s.get(Setting, JWT_SECRET_KEY)
            if row is not None:
                return row.value
        try:
            with self._db.write() as s:
                row = s.get(Setting, JWT_SECRET_KEY)
                if row is None:
                    row = Setting(key=JWT_SECRET_KEY, value=secrets.new_signing_key())
                    s.add(row)
                return row.value
        except Conflict:  # another process stored one first: use theirs
            with self._db.read() as s:
                return s.get(Setting, JWT_SECRET_KEY).value


class ServiceBase:
    """``clock`` and ``ids``: where the service's "now" and new ids come from (the
    composition root passes one of each to every service; tests pass settable ones)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: KeyRing,
        *,
        clock: Clock = SYSTEM_CLOCK,
        ids: IdSource = RANDOM_IDS,
    ) -> None:
        self.db = db
        self.settings = settings
        self.keys = keys
        self.clock = clock
        self.ids = ids

    def record_event(
        self,
        session: Session,
        actor: Actor,
        ctx: RequestContext,
        action: str,
        target_id: uuid.UUID | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit event, stamped by this service's clock and id source."""
        audit.record(
            session, actor, ctx, action, target_id, changes, at=self.clock.now(), ids=self.ids
        )

    def record_events(
        self,
        session: Session,
        actor: Actor,
        ctx: RequestContext,
        events: Iterable[audit.PendingEvent],
    ) -> int:
        """Append audit events (one timestamp), stamped like :meth:`record_event`."""
        return audit.record_many(session, actor, ctx, events, at=self.clock.now(), ids=self.ids)


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def load_user(
    session: Session,
    user_id: uuid.UUID | str,
    *,
    for_update: bool = False,
    include_deleted: bool = False,
) -> User:
    """The user with this id, or NotFound (also for a malformed id or a deleted user)."""
    uid = parse_uuid(user_id)
    if uid is None:
        raise NotFound("User not found")
    stmt = select(User).where(User.id == uid)
    if for_update:
        stmt = stmt.with_for_update(of=User)
    user = session.execute(stmt).unique().scalar_one_or_none()
    if user is None or (user.deleted_at is not None and not include_deleted):
        raise NotFound("User not found")
    return user
