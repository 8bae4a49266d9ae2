"""Purging dead tokens, sessions and old mail."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy import func, select, update

from usermgmt.core.models import AuthSession, MailMessage, OneTimeToken

from ..helpers import login, make_user


def _count(services, model):
    with services.db.read() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def _seed(services, operator, ctx):
    for i in range(3):
        make_user(services, operator, ctx, f"u{i}@example.com")
        services.auth.forgot_password(ctx, {"email": f"u{i}@example.com"})
        services.auth.forgot_password(ctx, {"email": f"u{i}@example.com"})  # voids the first
        login(services, ctx, f"u{i}@example.com")
    now = services.clock.now()
    with services.db.write() as s:
        s.execute(update(AuthSession).values(expires_at=now - timedelta(seconds=1)))
        s.execute(update(MailMessage).values(status="sent", sent_at=now - timedelta(days=90)))


def test_purge_dry_run_then_for_real(services, operator, ctx):
    _seed(services, operator, ctx)
    dry = services.maintenance.purge(operator, ctx, dry_run=True)
    expected = {
        "one_time_tokens": 3,
        "sessions": 3,
        "mail": 6,
        "api_keys": 0,
        "mfa_challenges": 0,
        "rate_limit_counters": 0,
    }
    assert dry.counts == expected
    assert _count(services, OneTimeToken) == 6
    done = services.maintenance.purge(operator, ctx)
    assert done.counts == dry.counts
    assert _count(services, OneTimeToken) == 3  # the live reset tokens stay
    assert _count(services, AuthSession) == 0
    again = services.maintenance.purge(operator, ctx)
    assert again.total == 0
    assert services.audit.query(operator, {"action": "maintenance.purged"}).data[0].changes == (
        expected
    )


def test_two_purges_at_once_share_the_work(make_services, services, operator, ctx):
    _seed(services, operator, ctx)
    with ThreadPoolExecutor(2) as pool:
        reports = list(
            pool.map(lambda _: make_services().maintenance.purge(operator, ctx), range(2))
        )
    assert sum(r.counts["sessions"] for r in reports) == 3
    assert sum(r.counts["one_time_tokens"] for r in reports) == 3
    assert _count(services, AuthSession) == 0
