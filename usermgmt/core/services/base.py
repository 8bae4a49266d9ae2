"""What every service shares: the database, the settings and the signing keys."""

from __future__ import annotations

import secrets
import threading
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from usermgmt.core.config import Settings
from usermgmt.core.db import Database
from usermgmt.core.errors import Conflict, NotFound
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
                    row = Setting(key=JWT_SECRET_KEY, value=secrets.token_urlsafe(48))
                    s.add(row)
                return row.value
        except Conflict:  # another process stored one first: use theirs
            with self._db.read() as s:
                return s.get(Setting, JWT_SECRET_KEY).value


class ServiceBase:
    def __init__(self, db: Database, settings: Settings, keys: KeyRing) -> None:
        self.db = db
        self.settings = settings
        self.keys = keys


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
