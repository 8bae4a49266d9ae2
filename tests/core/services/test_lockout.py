"""Failed logins block password logins for an identifier; they never touch the account.

Covers the auth service's lockout and the counting of usermgmt.core.throttle.
"""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from usermgmt.core import errors
from usermgmt.core.models import AuthSession, LoginThrottle, User
from usermgmt.core.throttle import identifier_key

from ..helpers import STRONG, login, make_user


def _attempt(services, ctx, identifier, password="Wrong-Passw0rd"):
    field = "email" if "@" in identifier else "username"
    return services.auth.login(ctx, {field: identifier, "password": password})


def _fail(services, ctx, identifier, times):
    codes = []
    for _ in range(times):
        with pytest.raises(errors.DomainError) as info:
            _attempt(services, ctx, identifier)
        codes.append(info.value.code)
    return codes


def test_failed_logins_leave_the_owners_sessions_alone(make_services, operator, ctx):
    services = make_services(lockout_threshold=5)
    admin = make_user(services, operator, ctx, "root@example.com", ("admin",), username="root")
    held = login(services, ctx, "root@example.com").tokens

    codes = _fail(services, ctx, "root@example.com", 6)
    assert codes == ["INVALID_CREDENTIALS"] * 4 + ["ACCOUNT_LOCKED"] * 2

    actor = services.auth.authenticate_token(held.access_token)  # still works
    assert actor.user_id == admin.id and actor.is_admin
    fresh = services.auth.refresh(ctx, {"refresh_token": held.refresh_token}).tokens
    assert services.auth.authenticate_token(fresh.access_token).user_id == admin.id
    # Password login with that identifier is what is blocked, even with the right password.
    with pytest.raises(errors.AccountLocked, match="identifier") as info:
        login(services, ctx, "root@example.com")
    assert info.value.details["locked_until"].endswith("Z")
    # The account is untouched: no admin lock, active, not in status=locked.
    got = services.user_reads.get(operator, str(admin.id))
    assert got.locked_until is None and got.is_active
    assert services.user_reads.list(operator, {"status": "locked"}).data == []
    with services.db.read() as s:
        assert s.execute(select(AuthSession.revoked_at)).scalars().all() == [None]
    # The username is an identifier of its own.
    assert _attempt(services, ctx, "root", STRONG).user.id == admin.id


def test_the_block_ends_after_the_lockout_minutes(make_services, clock, operator, ctx):
    services = make_services(lockout_threshold=2, lockout_minutes=15, clock=clock)
    user = make_user(services, operator, ctx, "ada@example.com")
    locked_at = clock.now()
    codes = _fail(services, ctx, "ada@example.com", 3)
    assert codes == ["INVALID_CREDENTIALS", "ACCOUNT_LOCKED", "ACCOUNT_LOCKED"]
    clock.advance(minutes=14, seconds=59)
    with pytest.raises(errors.AccountLocked) as info:
        _attempt(services, ctx, "ada@example.com", STRONG)
    until = (locked_at + timedelta(minutes=15)).isoformat().replace("+00:00", "Z")
    assert info.value.details["locked_until"] == until
    clock.advance(seconds=1)  # the block ends at its time
    assert _attempt(services, ctx, "ada@example.com", STRONG).user.id == user.id


def test_failures_further_apart_than_the_window_do_not_add_up(make_services, clock, operator, ctx):
    services = make_services(lockout_threshold=2, lockout_minutes=15, clock=clock)
    make_user(services, operator, ctx, "ada@example.com")
    assert _fail(services, ctx, "ada@example.com", 1) == ["INVALID_CREDENTIALS"]
    clock.advance(minutes=16)  # the first failure is out of the window: counting starts again
    assert _fail(services, ctx, "ada@example.com", 1) == ["INVALID_CREDENTIALS"]
    clock.advance(minutes=14)  # within the window of the second: this one locks
    assert _fail(services, ctx, "ada@example.com", 1) == ["ACCOUNT_LOCKED"]


def test_the_block_is_audited_once_as_login_blocked_not_locked(make_services, operator, ctx):
    services = make_services(lockout_threshold=3)
    user = make_user(services, operator, ctx, "ada@example.com")
    _fail(services, ctx, "ada@example.com", 5)
    events = services.audit.query(operator, {"target_id": str(user.id)}).data
    assert [e.action for e in reversed(events)] == ["user.created", "user.login_blocked"]
    blocked = events[0]
    assert blocked.actor_label == "system:lockout"
    assert blocked.changes["failed_logins"] == 3 and blocked.changes["blocked_until"]
    assert services.audit.verify(operator).ok


def test_unlock_clears_the_blocks_of_email_and_username(make_services, operator, ctx):
    services = make_services(lockout_threshold=2)
    user = make_user(services, operator, ctx, "ada@example.com", username="ada")
    for identifier in ("ada@example.com", "ada"):
        _fail(services, ctx, identifier, 2)
        with pytest.raises(errors.AccountLocked):
            _attempt(services, ctx, identifier, STRONG)
    services.users.unlock(operator, ctx, str(user.id))
    for identifier in ("ada@example.com", "ada"):
        assert _attempt(services, ctx, identifier, STRONG).user.id == user.id
    with services.db.read() as s:
        keys = [identifier_key("ada@example.com"), identifier_key("ada")]
        assert s.execute(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all() == []
    unlocked = services.audit.query(operator, {"action": "user.unlocked"}).data[0]
    assert unlocked.changes == {"login_blocks_cleared": 2}


def test_an_admin_lock_still_ends_sessions(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    held = login(services, ctx, "ada@example.com").tokens
    services.users.lock(operator, ctx, str(user.id))
    with pytest.raises(errors.AuthenticationError) as info:
        services.auth.authenticate_token(held.access_token)
    assert info.value.message == "Session revoked"
    with pytest.raises(errors.AuthenticationError):
        services.auth.refresh(ctx, {"refresh_token": held.refresh_token})
    with pytest.raises(errors.AccountLocked, match="locked by an admin"):
        login(services, ctx, "ada@example.com")
    with services.db.read() as s:
        reasons = s.execute(select(AuthSession.revoke_reason)).scalars().all()
    assert reasons == ["locked"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda now: {"is_active": False}, "Account deactivated"),
        (lambda now: {"deleted_at": now}, "Account deleted"),
        (lambda now: {"locked_until": now + timedelta(hours=1)}, "Account locked by an admin"),
    ],
)
def test_the_401_of_a_live_session_says_what_is_true(services, operator, ctx, change, message):
    # A session that is still live while its account is not (no service path leaves
    # one so; the per-request check must hold anyway, and say why).
    user = make_user(services, operator, ctx, "ada@example.com")
    held = login(services, ctx, "ada@example.com").tokens
    with services.db.write() as s:
        s.execute(update(User).where(User.id == user.id).values(**change(services.clock.now())))
    with pytest.raises(errors.AuthenticationError) as info:
        services.auth.authenticate_token(held.access_token)
    assert info.value.message == message
    with pytest.raises(errors.AuthenticationError) as info:
        services.auth.refresh(ctx, {"refresh_token": held.refresh_token})
    assert info.value.message == message


def test_an_expired_session_is_called_expired(make_services, clock, operator, ctx):
    services = make_services(clock=clock, access_token_ttl=86400)
    make_user(services, operator, ctx, "ada@example.com")
    held = login(services, ctx, "ada@example.com").tokens
    with services.db.write() as s:
        s.execute(update(AuthSession).values(expires_at=clock.now() + timedelta(hours=1)))
    clock.advance(hours=1)  # the session ends at its time; the access token lives on
    with pytest.raises(errors.AuthenticationError) as info:
        services.auth.authenticate_token(held.access_token)
    assert info.value.message == "Session expired"
