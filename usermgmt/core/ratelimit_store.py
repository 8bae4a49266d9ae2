"""A ``limits`` storage in the application's database, for rate limits shared by
several servers on one database with no extra infrastructure.

Each counter is one row; counting is a single atomic ``INSERT … ON CONFLICT DO
UPDATE … RETURNING`` that also starts a new window when the old one expired,
so concurrent servers never lose a hit. Expired rows are reused by the next
hit on the same key and deleted by ``usermgmt db purge``.
"""

from __future__ import annotations

from datetime import timedelta

from limits.storage import Storage
from sqlalchemy import case, delete, literal

from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.db import Database, upsert
from usermgmt.core.errors import DomainError, ServiceUnavailable
from usermgmt.core.models import RateLimitCounter, UTCDateTime


class DatabaseRateLimitStorage(Storage):
    STORAGE_SCHEME = None  # built with a Database, not from a URI

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(None, wrap_exceptions=False)
        self.db = db
        self.clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return DomainError

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = self.clock.now()
        table = RateLimitCounter.__table__
        now_v = literal(now, UTCDateTime())
        expires_v = literal(now + timedelta(seconds=expiry), UTCDateTime())
        insert = upsert(self.db.dialect)
        expired = table.c.expires_at <= now_v
        stmt = (
            insert(table)
            .values(key=key, count=amount, expires_at=now + timedelta(seconds=expiry))
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "count": case((expired, amount), else_=table.c.count + amount),
                    "expires_at": case((expired, expires_v), else_=table.c.expires_at),
                },
            )
            .returning(table.c.count)
        )
        with self.db.write() as s:
            return int(s.execute(stmt).scalar_one())

    def _row(self, key: str) -> RateLimitCounter | None:
        with self.db.read() as s:
            row = s.get(RateLimitCounter, key)
        if row is None or row.expires_at <= self.clock.now():
            return None
        return row

    def get(self, key: str) -> int:
        row = self._row(key)
        return row.count if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return (row.expires_at if row else self.clock.now()).timestamp()

    def check(self) -> bool:
        try:
            self.db.ping()
        except ServiceUnavailable:
            return False
        return True

    def reset(self) -> int | None:
        with self.db.write() as s:
            return s.execute(delete(RateLimitCounter)).rowcount

    def clear(self, key: str) -> None:
        with self.db.write() as s:
            s.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))


__all__ = ["DatabaseRateLimitStorage"]
