"""usermgmt.core.clock: the one present of the core, and every service reading it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from usermgmt.core.clock import SYSTEM_CLOCK, ManualClock
from usermgmt.core.models import AuditEvent, AuthSession, MailMessage, OneTimeToken, User

from .helpers import login, make_user

START = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_a_manual_clock_stands_still_until_moved():
    clock = ManualClock(START)
    assert clock.now() == clock.now() == START
    assert clock.advance(minutes=5) == START + timedelta(minutes=5)
    assert clock.advance(timedelta(seconds=1)) == START + timedelta(minutes=5, seconds=1)
    assert clock.set(START) == clock.now() == START


def test_a_manual_clock_keeps_utc_and_refuses_naive_times():
    clock = ManualClock(datetime(2030, 1, 2, 5, 0, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == datetime(2030, 1, 2, 3, 0, tzinfo=UTC)
    assert clock.now().utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2030, 1, 2))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2030, 1, 2))


def test_the_system_clock_is_aware_utc():
    assert SYSTEM_CLOCK.now().utcoffset() == timedelta(0)


def test_every_service_and_the_read_model_share_the_injected_clock(make_services):
    clock = ManualClock(START)
    services = make_services(clock=clock)
    assert services.clock is clock
    for name in ("users", "user_reads", "auth", "sessions", "roles", "audit", "mail", "transfer"):
        assert getattr(services, name).clock is clock, name


def test_rows_and_events_are_stamped_by_the_injected_clock(make_services, operator, ctx):
    clock = ManualClock(START)
    services = make_services(clock=clock)
    user = make_user(services, operator, ctx, "ada@example.com")
    assert (user.created_at, user.updated_at) == (START, START)
    clock.advance(hours=1)
    login(services, ctx, "ada@example.com")
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    later = START + timedelta(hours=1)
    with services.db.read() as s:
        assert s.get(User, user.id).last_login_at == later
        assert s.execute(select(AuthSession.created_at)).scalars().all() == [later]
        token = s.execute(select(OneTimeToken)).scalar_one()
        assert (token.created_at, token.expires_at) == (
            later,
            later + timedelta(seconds=services.settings.reset_token_ttl),
        )
        assert set(s.execute(select(MailMessage.created_at)).scalars()) == {later}
        stamps = s.execute(select(AuditEvent.action, AuditEvent.at)).all()
    assert dict(stamps) == {
        "user.created": START,
        "auth.login": later,
        "user.reset_requested": later,
    }
