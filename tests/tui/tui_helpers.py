"""Helpers for the console's tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from conftest import STRONG_PASSWORD  # noqa: F401 - re-exported for the tests
from textual.app import App
from textual.message import Message
from textual.notifications import Notification, Notify
from textual.pilot import Pilot
from textual.worker import WorkerCancelled

from usermgmt.core.context import Actor, RequestContext

SIZE = (120, 36)

# The notifications each app run by run_console showed, expired ones included.
_SHOWN: weakref.WeakKeyDictionary[App, list[Notification]] = weakref.WeakKeyDictionary()


def run_console(
    app: App,
    scenario: Callable[[Pilot], Awaitable[None]],
    *,
    size: tuple[int, int] = SIZE,
    settled: bool = True,
) -> None:
    """Run ``app`` headless at ``size``, let the workers of its start finish (unless
    ``settled`` is False), then ``await scenario(pilot)``. An exception the app let
    through is raised here once it has stopped; the notifications it showed are kept
    for :func:`toasts`."""
    shown = _SHOWN.setdefault(app, [])

    def record(message: Message) -> None:
        if isinstance(message, Notify):
            shown.append(message.notification)

    async def run() -> None:
        async with app.run_test(size=size, message_hook=record) as pilot:
            if settled:
                await settle(pilot)
            await scenario(pilot)

    asyncio.run(run())


def seed_users(services, n: int, *, prefix: str = "user") -> list:
    """``n`` users through the core (bcrypt rounds are 4 in tests; no passwords here)."""
    op, ctx = Actor.operator("cli", "seed"), RequestContext(request_id="seed")
    return [
        services.users.create(
            op,
            ctx,
            {
                "email": f"{prefix}{i:03d}@example.com",
                "username": f"{prefix}{i:03d}",
                "first_name": prefix.title(),
                "last_name": f"N{i:03d}",
            },
        )
        for i in range(n)
    ]


async def settle(pilot, rounds: int = 200) -> None:
    """Let workers finish and their results reach the UI (bounded; never a fixed sleep)."""
    app = pilot.app
    for _ in range(rounds):
        # A screen that closes cancels its workers, one perhaps still handing over the
        # result that closed it: that is the app's business, not a failure.
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete()
        await pilot.pause()
        if not any(w.is_running for w in app.workers):
            await pilot.pause()
            if not any(w.is_running for w in app.workers):
                return
    raise AssertionError("workers did not settle")


async def wait_until(pilot, predicate: Callable[[], bool], what: str, rounds: int = 400) -> None:
    """Pump the app until ``predicate()`` holds (bounded number of short pauses)."""
    for _ in range(rounds):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def text_of(widget) -> str:
    """The plain text a Static / Label shows."""
    content = widget.content
    return content.plain if hasattr(content, "plain") else str(content)


def notifications(app: App) -> list[Notification]:
    """Every notification ``app`` showed so far under run_console, in order."""
    return list(_SHOWN[app])


def toasts(app: App, severity: str | None = None) -> list[str]:
    """Messages of the notifications shown so far (optionally of one severity)."""
    return [n.message for n in notifications(app) if severity in (None, n.severity)]


FIXED_NOW = datetime(2025, 3, 17, 9, 30, tzinfo=UTC)
