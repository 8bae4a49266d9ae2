"""The core's one source of the present: a :class:`Clock`.

``build_services(clock=...)`` hands one clock to every service, the read model
and the pieces below them (login throttle, audit chain, outbox, rate-limit
store), so "now" means the same thing everywhere in one process and a test
can set it. Nothing else in the core reads the system time (the architecture
test enforces it). Times are timezone-aware UTC.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The present, as a timezone-aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clock: what production uses."""

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that stands still until it is set or advanced (for tests and tools).

    Safe to read and move from several threads.
    """

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = _aware(start)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> datetime:
        with self._lock:
            self._now = _aware(when)
            return self._now

    def advance(self, delta: timedelta | None = None, **parts: float) -> datetime:
        """Move forward by ``delta`` or by ``timedelta(**parts)``; returns the new present."""
        step = delta if delta is not None else timedelta(**parts)
        with self._lock:
            self._now += step
            return self._now

    def __repr__(self) -> str:
        return f"ManualClock({self._now.isoformat()})"


def _aware(when: datetime) -> datetime:
    if when.tzinfo is None:
        raise ValueError("a clock's time must be timezone-aware")
    return when.astimezone(UTC)
