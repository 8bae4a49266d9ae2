"""Per-client-IP rate limits on the authentication endpoints, through ``limits``.

The rules come from the core (``services.runtime.api_options.rate_limits``).
The store is ``memory://`` (the default, one process), any ``limits`` storage
URI such as ``redis://host:6379`` (shared by every server using it), or
``database`` to keep the counters in the application's own database (shared by
every server on one PostgreSQL, with no extra infrastructure; the core
provides that store). The strategy is a fixed window, which every ``limits``
storage supports.

A shared store that fails (Redis down, stalled or refusing) makes the counted
requests 503 SERVICE_UNAVAILABLE within ``rate_limit_storage_timeout``, never a
500 or a hang: see :class:`OutageGuard`. The ``database`` store fails as the
database does (503, bounded by its connect timeout).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, parse_many
from limits.errors import ConfigurationError as LimitsConfigurationError
from limits.storage import MemoryStorage, Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from usermgmt.core.errors import ConfigurationError, RateLimited, ServiceUnavailable

if TYPE_CHECKING:
    from usermgmt.core.services.runtime import RateLimitRules

log = logging.getLogger("usermgmt.api.ratelimit")

# Storages built on redis-py (limits' redis, redis+unix, redis+cluster, redis+sentinel
# and their valkey twins): their socket timeouts come from the settings.
REDIS_FAMILY = ("redis", "rediss", "valkey", "valkeys")
# What /health/ready calls a store of the limiter's own.
STORE_CHECK = "rate_limit_store"
# While a store fails, one request per this many seconds tries it again.
PROBE_INTERVAL = 1.0


@dataclass(frozen=True)
class Limit:
    name: str
    items: tuple[RateLimitItem, ...]


def make_storage(
    rules: RateLimitRules, database_store: Callable[[], Storage] | None = None
) -> Storage:
    """The store ``rules`` name; ``database_store`` makes the one in the application's
    database (``services.runtime.rate_limit_counters``)."""
    uri = rules.storage.strip()
    if rules.in_database:
        if database_store is None:
            raise ConfigurationError("USERMGMT_RATE_LIMIT_STORAGE=database needs a database")
        return database_store()
    try:
        return storage_from_string(uri, **_store_options(uri, rules.storage_timeout))
    except (LimitsConfigurationError, ValueError) as exc:
        raise ConfigurationError(
            f"USERMGMT_RATE_LIMIT_STORAGE: {exc} "
            "(use memory://, a limits storage URI such as redis://host:6379, or database)"
        ) from None


def _store_options(uri: str, timeout: float) -> dict[str, Any]:
    """Explicit, small timeouts for redis-py, whose own default is to wait forever.

    Timeouts in the URI's query string (``?socket_timeout=2``) win: redis-py
    lets them override these.
    """
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme.split("+", 1)[0] not in REDIS_FAMILY:
        return {}
    options: dict[str, Any] = {"socket_connect_timeout": timeout, "socket_timeout": timeout}
    if scheme.endswith("+sentinel"):
        options["sentinel_kwargs"] = dict(options)
    return options


def counts_per_process(settings) -> bool:
    """Whether a rate limit of ``settings`` is on and its counters would live in this
    process alone (``usermgmt serve --workers`` refuses that)."""
    from usermgmt.core.services.runtime import runtime_options

    return runtime_options(settings).api.rate_limits.counted_per_process


class RateLimiter:
    """Named limits ('login', 'auth') checked per client IP.

    ``storage`` defaults to the store the rules name (see :func:`make_storage`).
    """

    def __init__(
        self,
        rules: RateLimitRules,
        storage: Storage | None = None,
        *,
        database_store: Callable[[], Storage] | None = None,
    ) -> None:
        self.limits: dict[str, Limit | None] = {
            "login": _parse("login", rules.login),
            "auth": _parse("auth", rules.auth),
        }
        needed = any(self.limits.values())
        self.storage = storage or (make_storage(rules, database_store) if needed else None)
        self.strategy = FixedWindowRateLimiter(self.storage) if self.storage else None
        self.guard = _guard_for(self.storage, rules)

    def hit(self, name: str, scope: str, client: str) -> None:
        """Count one request; raise RateLimited (with retry_after) when over the limit.

        Raises ServiceUnavailable when a shared store does not answer.
        """
        limit = self.limits.get(name)
        if limit is None or self.strategy is None:
            return
        call = self.guard.call if self.guard else _direct
        for item in limit.items:
            if not call(self.strategy.hit, item, name, scope, client):
                reset, _remaining = call(self.strategy.get_window_stats, item, name, scope, client)
                retry = max(1, math.ceil(reset - time.time()))
                raise RateLimited(
                    "Too many requests; try again later",
                    details={"retry_after": retry, "limit": str(item)},
                )

    def readiness(self) -> dict[str, str]:
        """``{"rate_limit_store": "ok" | "unavailable"}`` when the counters live in a
        store of their own; empty otherwise (``memory://`` cannot fail, and the
        ``database`` store is the database that /health/ready checks anyway)."""
        if self.guard is None or self.storage is None:
            return {}
        return {STORE_CHECK: "ok" if self.guard.probe(self.storage.check) else "unavailable"}


class OutageGuard:
    """Calls on a shared store: 503 while it fails, one log line per outage, quick recovery.

    The first failure starts an outage and is logged once. While it lasts, one
    call per ``probe_interval`` seconds tries the store (a readiness probe
    always does); the others are answered at once instead of each waiting out
    the timeout on a store that is down or stalled, so a dead Redis neither
    ties up every request thread nor gets a reconnection per request. The
    first call that succeeds ends the outage (logged once).
    """

    def __init__(
        self,
        errors: type[Exception] | tuple[type[Exception], ...],
        *,
        probe_interval: float = PROBE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.errors = errors
        self.probe_interval = probe_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._next_try = 0.0

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._down_since is not None and not self._may_try():
            raise _unavailable()
        try:
            result = fn(*args)
        except self.errors as exc:
            self._failed(f"{type(exc).__name__}: {exc}")
            raise _unavailable() from None
        if self._down_since is not None:
            self._recovered()
        return result

    def probe(self, check: Callable[[], bool]) -> bool:
        """Ask the store now (``check`` is bounded by the store's timeout)."""
        try:
            ok = bool(check())
        except self.errors as exc:
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        else:
            reason = "its health check failed"
        if ok:
            self._recovered()
        else:
            self._failed(reason)
        return ok

    def _may_try(self) -> bool:
        now = self.clock()
        with self._lock:
            if self._down_since is None:
                return True
            if now < self._next_try:
                return False
            self._next_try = now + self.probe_interval  # this call is the probe
            return True

    def _failed(self, reason: str) -> None:
        now = self.clock()
        with self._lock:
            self._next_try = now + self.probe_interval
            if self._down_since is not None:
                return
            self._down_since = now
        log.warning(
            "rate-limit store unavailable (%s); counted requests are answered 503 until it "
            "answers again",
            reason,
        )

    def _recovered(self) -> None:
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            log.info(
                "rate-limit store available again",
                extra={"outage_seconds": round(self.clock() - since, 1)},
            )


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        "Rate-limit store is unavailable; try again shortly",
        details={"unavailable": STORE_CHECK},
    )


def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def _guard_for(storage: Storage | None, rules: RateLimitRules) -> OutageGuard | None:
    """A guard for a store outside the process and the database (Redis and the like):
    the database store fails as the database does."""
    if storage is None or isinstance(storage, MemoryStorage) or rules.in_database:
        return None
    return OutageGuard(storage.base_exceptions)


def _parse(name: str, value: str) -> Limit | None:
    if value == "off":
        return None
    return Limit(name, tuple(parse_many(value)))
