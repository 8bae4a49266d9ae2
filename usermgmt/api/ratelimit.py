"""Per-client-IP rate limits on the authentication endpoints, through ``limits``.

The store is ``settings.rate_limit_storage``: ``memory://`` (the default, one
process), any ``limits`` storage URI such as ``redis://host:6379`` (shared by
every server using it), or ``database`` to keep the counters in the
application's own database (shared by every server on one PostgreSQL, with no
extra infrastructure). The strategy is a fixed window, which every ``limits``
storage supports.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from usermgmt.core.config import Settings
from usermgmt.core.errors import ConfigurationError, RateLimited

DATABASE_STORAGE = ("database", "db", "database://")


@dataclass(frozen=True)
class Limit:
    name: str
    items: tuple[RateLimitItem, ...]


def make_storage(settings: Settings, db=None) -> Storage:
    uri = settings.rate_limit_storage.strip()
    if uri.lower() in DATABASE_STORAGE:
        if db is None:
            raise ConfigurationError("USERMGMT_RATE_LIMIT_STORAGE=database needs a database")
        from usermgmt.core.ratelimit_store import DatabaseRateLimitStorage

        return DatabaseRateLimitStorage(db)
    try:
        return storage_from_string(uri)
    except (LimitsConfigurationError, ValueError) as exc:
        raise ConfigurationError(
            f"USERMGMT_RATE_LIMIT_STORAGE: {exc} "
            "(use memory://, a limits storage URI such as redis://host:6379, or database)"
        ) from None


def counts_per_process(settings: Settings) -> bool:
    """Whether a rate limit is on and its counters would live in this process alone."""
    limits = (_parse("login", settings.rate_limit_login), _parse("auth", settings.rate_limit_auth))
    return any(limits) and settings.rate_limit_storage.strip().lower().startswith("memory://")


class RateLimiter:
    """Named limits ('login', 'auth') checked per client IP."""

    def __init__(self, settings: Settings, storage: Storage | None = None, db=None) -> None:
        self.limits: dict[str, Limit | None] = {
            "login": _parse("login", settings.rate_limit_login),
            "auth": _parse("auth", settings.rate_limit_auth),
        }
        needed = any(self.limits.values())
        self.storage = storage or (make_storage(settings, db) if needed else None)
        self.strategy = FixedWindowRateLimiter(self.storage) if self.storage else None

    def hit(self, name: str, scope: str, client: str) -> None:
        """Count one request; raise RateLimited (with retry_after) when over the limit."""
        limit = self.limits.get(name)
        if limit is None or self.strategy is None:
            return
        for item in limit.items:
            if not self.strategy.hit(item, name, scope, client):
                reset, _remaining = self.strategy.get_window_stats(item, name, scope, client)
                retry = max(1, math.ceil(reset - time.time()))
                raise RateLimited(
                    "Too many requests; try again later",
                    details={"retry_after": retry, "limit": str(item)},
                )


def _parse(name: str, value: str) -> Limit | None:
    if value == "off":
        return None
    return Limit(name, tuple(parse_many(value)))
