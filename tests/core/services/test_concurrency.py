"""Races and failures from the core issue, on both databases.

Each thread builds its own Services (its own engine and sessions), as separate
server processes would.
"""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from sqlalchemy import func, select

from usermgmt.core import errors
from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.models import AuditEvent, LoginThrottle, OneTimeToken, RefreshToken, User
from usermgmt.core.services import build_services
from usermgmt.core.throttle import identifier_key

from ..helpers import STRONG, login, make_user


def _race(make_services, n, fn):
    """Run fn(services, i) in n threads released together; return results or exceptions."""
    pool_services = [make_services() for _ in range(n)]
    barrier = Barrier(n)

    def run(i):
        barrier.wait()
        try:
            return fn(pool_services[i], i)
        except errors.DomainError as exc:
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_twenty_threads_create_the_same_email(make_services, services, operator, ctx):
    variants = ["race@example.com", "RACE@example.com", "Race@Example.Com", "race@EXAMPLE.com"]
    results = _race(
        make_services,
        20,
        lambda svc, i: svc.users.create(
            operator, ctx, {"email": variants[i % 4], "password": STRONG}
        ),
    )
    created = [r for r in results if not isinstance(r, Exception)]
    conflicts = [r for r in results if isinstance(r, errors.EmailExists)]
    assert len(created) == 1 and len(conflicts) == 19
    with services.db.read() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 1
        creations = s.execute(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "user.created")
        ).scalar_one()
    assert creations == 1
    assert services.audit.verify(operator).ok


def test_parallel_wrong_passwords_are_all_counted(make_services, operator, ctx):
    # With the threshold at 20, the lock can only fire once all 20 failures were
    # counted: every attempt passes the lock check, none may be lost.
    services = make_services(lockout_threshold=20)
    make_user(services, operator, ctx, "ada@example.com")
    results = _race(
        lambda: make_services(lockout_threshold=20),
        20,
        lambda svc, i: login(svc, ctx, "ada@example.com", "Wrong-Passw0rd"),
    )
    codes = sorted(r.code for r in results)
    assert codes == ["ACCOUNT_LOCKED"] + ["INVALID_CREDENTIALS"] * 19
    with services.db.read() as s:
        assert s.get(LoginThrottle, identifier_key("ada@example.com")).failed_count == 20
    with pytest.raises(errors.AccountLocked):
        login(services, ctx, "ada@example.com")


def test_parallel_refreshes_make_one_successor(make_services, services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    token = login(services, ctx, "ada@example.com").tokens.refresh_token
    results = _race(
        make_services, 10, lambda svc, i: svc.auth.refresh(ctx, {"refresh_token": token})
    )
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.tokens.refresh_token for r in results}) == 1
    with services.db.read() as s:
        assert s.execute(select(func.count()).select_from(RefreshToken)).scalar_one() == 2


def test_parallel_resets_with_one_token(make_services, services, operator, ctx):
    from usermgmt.core.models import MailMessage

    make_user(services, operator, ctx, "ada@example.com")
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    with services.db.read() as s:
        token = (
            s.execute(select(MailMessage).where(MailMessage.template == "password_reset"))
            .scalar_one()
            .context["token"]
        )
    results = _race(
        make_services,
        5,
        lambda svc, i: svc.auth.reset_password(
            ctx, {"token": token, "new_password": f"N3w-Password!{i}"}
        ),
    )
    assert sum(1 for r in results if r is None) == 1
    assert sum(1 for r in results if isinstance(r, errors.InvalidToken)) == 4
    winner = results.index(None)
    login(services, ctx, "ada@example.com", f"N3w-Password!{winner}")
    with services.db.read() as s:
        used = s.execute(select(OneTimeToken.used_at)).scalars().all()
    assert len(used) == 1 and used[0] is not None


def test_failure_half_way_leaves_nothing(services, operator, ctx, monkeypatch):
    from usermgmt.core.services import users as users_module

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    # Fails after the user row is flushed, before the audit event: all or nothing.
    monkeypatch.setattr(users_module.audit, "record", boom)
    with pytest.raises(RuntimeError):
        services.users.create(operator, ctx, {"email": "ada@example.com", "password": STRONG})
    monkeypatch.undo()
    with services.db.read() as s:
        assert s.execute(select(func.count()).select_from(User)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0
    assert services.audit.verify(operator).ok


def test_database_unreachable_is_a_domain_error(tmp_path):
    settings = load_settings(database_url="postgresql+psycopg://u:s3cret@127.0.0.1:1/nope")
    with pytest.raises(errors.DatabaseUnavailable) as info:
        build_services(settings)
    assert "s3cret" not in str(info.value)
    missing_dir = tmp_path / "no" / "such"
    settings = load_settings(database_url=f"sqlite:///{missing_dir}/x.db")
    services = build_services(settings)  # the default SQLite path is created on demand
    services.close()


def test_database_going_away_after_start(services, operator, backend):
    if backend != "sqlite":
        pytest.skip("stopping the shared PostgreSQL is tested by the API's live-server tests")
    import os

    path = services.db.engine.url.database
    services.db.dispose()
    os.rename(path, path + ".gone")
    try:
        with pytest.raises(errors.ServiceUnavailable):
            services.user_reads.list(Actor.operator("cli", "t"))
    finally:
        services.db.dispose()
        os.replace(path + ".gone", path)
    assert services.user_reads.list(operator).meta.total == 0


def test_bad_settings_are_clear_errors():
    for kwargs, name in [
        ({"database_url": "mysql://x"}, "USERMGMT_DATABASE_URL"),
        ({"jwt_secret": "short"}, "USERMGMT_JWT_SECRET"),
        ({"bcrypt_rounds": 3}, "USERMGMT_BCRYPT_ROUNDS"),
        ({"rate_limit_login": "lots"}, "USERMGMT_RATE_LIMIT_LOGIN"),
    ]:
        with pytest.raises(errors.ConfigurationError, match=name):
            load_settings(**kwargs)
    assert load_settings(rate_limit_login="0").rate_limit_login == "off"


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("USERMGMT_ACCESS_TOKEN_TTL", "60")
    monkeypatch.setenv("USERMGMT_BCRYPT_ROUNDS", "nonsense")
    with pytest.raises(errors.ConfigurationError, match="USERMGMT_BCRYPT_ROUNDS"):
        load_settings()
    monkeypatch.setenv("USERMGMT_BCRYPT_ROUNDS", "12")
    settings = load_settings()
    assert settings.access_token_ttl == 60 and settings.bcrypt_rounds == 12


def test_request_context_reaches_audit(services, operator):
    ctx = RequestContext(ip="192.0.2.7", request_id="req-42")
    services.users.create(operator, ctx, {"email": "ada@example.com"})
    event = services.audit.query(operator, {"action": "user.created"}).data[0]
    assert (event.ip, event.request_id, event.actor_label) == ("192.0.2.7", "req-42", "cli:tester")
