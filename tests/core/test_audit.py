"""The audit chain: complete, linear under concurrency, tamper-evident, secret-free."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from usermgmt.core import errors

from .helpers import STRONG, login, make_user


def test_every_change_is_audited_once(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    uid = str(user.id)
    services.users.update(operator, ctx, uid, {"first_name": "Ada"})
    services.roles.grant(operator, ctx, uid, "moderator")
    services.users.lock(operator, ctx, uid)
    services.users.unlock(operator, ctx, uid)
    services.users.set_password(operator, ctx, uid, "N3w-Password!x")
    services.users.delete(operator, ctx, uid)
    services.users.restore(operator, ctx, uid)
    page = services.audit.query(operator, {"target_id": uid})
    assert [e.action for e in reversed(page.data)] == [
        "user.created",
        "user.updated",
        "user.roles_changed",
        "user.locked",
        "user.unlocked",
        "user.password_set",
        "user.deleted",
        "user.restored",
    ]
    update = page.data[-2]
    assert update.changes == {"first_name": {"before": None, "after": "Ada"}}
    assert services.audit.verify(operator).ok


def test_no_secret_reaches_the_audit_log(services, operator, ctx):
    services.auth.register(ctx, {"email": "ada@example.com", "password": STRONG})
    tokens = login(services, ctx, "ada@example.com").tokens
    services.auth.refresh(ctx, {"refresh_token": tokens.refresh_token})
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    dump = services.audit.query(operator, {"limit": 1000}).model_dump_json()
    for secret in (STRONG, tokens.refresh_token, tokens.access_token, "$2b$"):
        assert secret not in dump


def test_filters_and_cursor(services, operator, ctx):
    for i in range(5):
        make_user(services, operator, ctx, f"u{i}@example.com")
    first = services.audit.query(operator, {"limit": 2, "action": "user.created"})
    assert len(first.data) == 2 and first.meta.next_cursor
    rest = services.audit.query(
        operator, {"limit": 10, "action": "user.*", "cursor": first.meta.next_cursor}
    )
    assert [e.seq for e in rest.data] == [3, 2, 1]
    assert services.audit.query(operator, {"since": "2999-01-01T00:00:00Z"}).data == []
    with pytest.raises(errors.ValidationError):
        services.audit.query(operator, {"cursor": "x"})


def test_operator_actions_filter_by_actor_label(services, operator, ctx):
    from usermgmt.core.context import Actor

    make_user(services, operator, ctx, "a@example.com")
    make_user(services, Actor.operator("tui", "bob"), ctx, "b@example.com")
    by_bob = services.audit.query(operator, {"actor_label": "tui:bob"}).data
    assert [(e.action, e.actor_label, e.actor_id) for e in by_bob] == [
        ("user.created", "tui:bob", None)
    ]
    assert len(services.audit.query(operator, {"actor_label": "cli:tester"}).data) == 1
    assert services.audit.query(operator, {"actor_label": "cli:nobody"}).data == []
    with pytest.raises(errors.ValidationError):
        services.audit.query(operator, {"actor_label": ""})


def test_chain_stays_linear_under_concurrent_writers(make_services, services, operator, ctx):
    def create(i):
        svc = make_services()
        for j in range(5):
            svc.users.create(operator, ctx, {"email": f"t{i}-{j}@example.com"})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(8)))
    report = services.audit.verify(operator)
    assert report.ok and report.checked == 40


def test_tampering_is_detected(services, operator, ctx, backend):
    for i in range(3):
        make_user(services, operator, ctx, f"u{i}@example.com")
    if backend == "postgres":
        with pytest.raises(errors.DomainError), services.db.write() as s:
            s.execute(text("UPDATE audit_events SET actor_label = 'someone' WHERE seq = 2"))
        with pytest.raises(errors.DomainError), services.db.write() as s:
            s.execute(text("DELETE FROM audit_events WHERE seq = 2"))
        # Only a superuser disabling the trigger can tamper; verify still catches it.
        with services.db.write() as s:
            s.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    with services.db.write() as s:
        s.execute(text("UPDATE audit_events SET actor_label = 'someone' WHERE seq = 2"))
    report = services.audit.verify(operator)
    assert not report.ok and report.bad_seq == 2 and "hash" in report.reason
    with services.db.write() as s:
        s.execute(text("DELETE FROM audit_events WHERE seq = 2"))
    report = services.audit.verify(operator)
    assert not report.ok and report.bad_seq == 3


def test_audit_requires_admin(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    actor = services.auth.authenticate_token(
        login(services, ctx, "ada@example.com").tokens.access_token
    )
    with pytest.raises(errors.PermissionDenied):
        services.audit.query(actor)
    with pytest.raises(errors.PermissionDenied):
        services.audit.verify(actor)
