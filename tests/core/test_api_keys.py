"""API keys and service accounts in the core: scopes meet roles, revocation, expiry,
bookkeeping, purge, and the rules of service accounts (both databases)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from usermgmt.core.context import RequestContext
from usermgmt.core.errors import (
    AuthenticationError,
    Conflict,
    InvalidCredentials,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from usermgmt.core.models import ApiKey, ApiKeyAddress, MailMessage, OneTimeToken

from .helpers import make_user

HERE = RequestContext(ip="10.0.0.1", request_id="req-keys-1")


def _service_account(services, operator, ctx, username="backup-cron", roles=("user",)):
    return services.users.create(
        operator,
        ctx,
        {
            "email": f"{username}@ops.example.com",
            "username": username,
            "roles": list(roles),
            "kind": "service",
        },
    )


def _key(services, actor, ctx, scopes, **extra):
    return services.api_keys.create(actor, ctx, {"name": "cron", "scopes": scopes, **extra})


def _mail_count(services):
    with services.db.read() as s:
        return s.execute(select(func.count()).select_from(MailMessage)).scalar_one()


def test_a_key_is_shown_once_and_stored_as_its_digest(services, operator, ctx):
    admin = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    made = _key(services, operator, ctx, ["users:read"], user_id=str(admin.id))
    secret = made.secret
    assert secret.startswith("umk_") and len(secret) >= 4 + 43  # 256 bits, base64url
    assert made.key.prefix == secret[:12] and made.key.state == "active"
    with services.db.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM api_keys")).all())
    assert secret not in dump and secret[12:] not in dump
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
    listed = services.api_keys.list(operator).data
    assert [k.id for k in listed] == [made.key.id]
    assert secret not in listed[0].model_dump_json()


def test_scopes_intersect_with_the_owners_current_roles(services, operator, ctx):
    admin = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    other = make_user(services, operator, ctx, "bob@example.com")
    reader = services.api_keys.authenticate(
        _key(services, operator, ctx, ["users:read"], user_id=str(admin.id)).secret, HERE
    )
    assert services.user_reads.get(reader, str(other.id)).email == "bob@example.com"
    with pytest.raises(PermissionDenied, match="users:write"):
        services.users.lock(reader, ctx, str(other.id))
    with pytest.raises(PermissionDenied, match="audit:read"):
        services.audit.query(reader)
    with pytest.raises(PermissionDenied):
        services.roles.set(reader, ctx, str(other.id), ["moderator"])
    with pytest.raises(PermissionDenied):
        services.maintenance.purge(reader, ctx)

    # A wide key of a plain user acts as that user: its own account only.
    wide = services.api_keys.authenticate(
        _key(services, operator, ctx, ["admin"], user_id=str(other.id)).secret, HERE
    )
    assert services.user_reads.get(wide, str(other.id)).id == other.id
    with pytest.raises(PermissionDenied):
        services.user_reads.get(wide, str(admin.id))
    with pytest.raises(PermissionDenied):
        services.audit.query(wide)


def test_demoting_the_owner_narrows_the_key_at_once(services, operator, ctx):
    make_user(services, operator, ctx, "root@example.com", roles=("admin",))
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    secret = _key(services, operator, ctx, ["audit:read"], user_id=str(ada.id)).secret
    services.audit.query(services.api_keys.authenticate(secret, HERE))
    services.roles.set(operator, ctx, str(ada.id), ["user"])
    with pytest.raises(PermissionDenied):
        services.audit.query(services.api_keys.authenticate(secret, HERE))


def test_revoked_expired_and_unknown_keys_fail(services, operator, ctx):
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    made = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id), expires_in_days=1)
    services.api_keys.authenticate(made.secret, HERE)
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        services.api_keys.authenticate(made.secret[:-1] + "x", HERE)
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        services.api_keys.authenticate("umk_" + "a" * 200, HERE)
    with services.db.write() as s:
        s.execute(update(ApiKey).values(expires_at=services.clock.now() - timedelta(seconds=1)))
    with pytest.raises(AuthenticationError, match="expired"):
        services.api_keys.authenticate(made.secret, HERE)
    assert services.api_keys.list(operator).data[0].state == "expired"

    other = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id))
    assert services.api_keys.revoke(operator, ctx, str(other.key.id)) is True
    assert services.api_keys.revoke(operator, ctx, str(other.key.id)) is False
    with pytest.raises(AuthenticationError, match="revoked"):
        services.api_keys.authenticate(other.secret, HERE)


def test_owner_deactivated_locked_or_deleted_stops_the_keys(services, operator, ctx):
    svc = _service_account(services, operator, ctx)
    secret = _key(services, operator, ctx, ["users:read"], user_id=str(svc.id)).secret
    services.users.update(operator, ctx, str(svc.id), {"is_active": False})
    with pytest.raises(AuthenticationError, match="deactivated"):
        services.api_keys.authenticate(secret, HERE)
    services.users.update(operator, ctx, str(svc.id), {"is_active": True})
    services.api_keys.authenticate(secret, HERE)
    services.users.lock(operator, ctx, str(svc.id))
    with pytest.raises(AuthenticationError, match="locked"):
        services.api_keys.authenticate(secret, HERE)
    services.users.unlock(operator, ctx, str(svc.id))
    services.users.delete(operator, ctx, str(svc.id))
    with pytest.raises(AuthenticationError, match="revoked"):
        services.api_keys.authenticate(secret, HERE)
    services.users.restore(operator, ctx, str(svc.id))
    with pytest.raises(AuthenticationError, match="revoked"):  # deletion revoked it for good
        services.api_keys.authenticate(secret, HERE)


def test_who_may_manage_which_keys(services, operator, ctx):
    from .helpers import actor_of, login

    make_user(services, operator, ctx, "bob@example.com")
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    bob = actor_of(services, login(services, ctx, "bob@example.com"))
    own = services.api_keys.create(bob, ctx, {"name": "mine", "scopes": ["users:read"]})
    assert own.key.user_id == bob.user_id and own.key.created_by == "user:bob@example.com"
    with pytest.raises(PermissionDenied):
        services.api_keys.create(
            bob, ctx, {"name": "x", "scopes": ["users:read"], "user_id": str(ada.id)}
        )
    with pytest.raises(PermissionDenied):
        services.api_keys.list(bob, {"all": True})
    ada_key = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id))
    with pytest.raises(NotFound):  # another user's key does not exist for bob
        services.api_keys.revoke(bob, ctx, str(ada_key.key.id))
    assert [k.name for k in services.api_keys.list(bob).data] == ["mine"]
    assert len(services.api_keys.list(operator, {"all": True}).data) == 2

    # A key may make keys, never with a scope it lacks.
    narrow = services.api_keys.authenticate(ada_key.secret, HERE)
    with pytest.raises(PermissionDenied, match="users:write"):
        services.api_keys.create(narrow, ctx, {"name": "x", "scopes": ["users:write"]})
    services.api_keys.create(narrow, ctx, {"name": "x", "scopes": ["users:read"]})
    with pytest.raises(ValidationError):
        services.api_keys.create(operator, ctx, {"name": "x", "scopes": ["users:read"]})
    with pytest.raises(ValidationError):
        _key(services, operator, ctx, ["everything"], user_id=str(ada.id))
    with pytest.raises(ValidationError):
        _key(services, operator, ctx, ["users:read"], user_id=str(ada.id), expires_in_days=0)


def test_last_use_is_written_once_a_minute_and_a_new_address_is_audited(services, operator, ctx):
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    made = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id))
    for _ in range(3):
        services.api_keys.authenticate(made.secret, HERE)
    key = services.api_keys.list(operator).data[0]
    first = key.last_used_at
    assert key.last_used_ip == "10.0.0.1" and first is not None
    services.api_keys.authenticate(made.secret, HERE)
    assert services.api_keys.list(operator).data[0].last_used_at == first  # within the minute
    with services.db.write() as s:  # a minute later
        s.execute(update(ApiKey).values(last_used_at=services.clock.now() - timedelta(seconds=61)))
    services.api_keys.authenticate(made.secret, HERE)
    assert services.api_keys.list(operator).data[0].last_used_at > first
    elsewhere = RequestContext(ip="192.0.2.7", request_id="req-keys-2")
    services.api_keys.authenticate(made.secret, elsewhere)
    assert services.api_keys.list(operator).data[0].last_used_ip == "192.0.2.7"
    services.api_keys.authenticate(made.secret, HERE)
    events = services.audit.query(operator, {"action": "api_key.used_from_new_address"}).data
    assert sorted(e.changes["ip"] for e in events) == ["10.0.0.1", "192.0.2.7"]
    assert {e.actor_label for e in events} == {f"key:{made.key.id}"}
    with services.db.read() as s:
        assert s.execute(select(func.count()).select_from(ApiKeyAddress)).scalar_one() == 2


def test_key_events_are_audited_without_the_secret(services, operator, ctx):
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    made = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id), expires_in_days=1)
    other = _key(services, operator, ctx, ["users:read"], user_id=str(ada.id))
    services.api_keys.authenticate(made.secret, HERE)
    services.api_keys.revoke(operator, ctx, str(other.key.id))
    with services.db.write() as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.id == made.key.id)
            .values(expires_at=services.clock.now() - timedelta(seconds=1))
        )
    services.maintenance.purge(operator, ctx)
    services.maintenance.purge(operator, ctx)  # each expiry is audited once
    events = services.audit.query(operator, {"target_id": str(ada.id)}).data
    actions = sorted(e.action for e in events if e.action.startswith("api_key."))
    assert actions == [
        "api_key.created",
        "api_key.created",
        "api_key.expired",
        "api_key.revoked",
        "api_key.used_from_new_address",
    ]
    with services.db.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM audit_events")).all())
    for secret in (made.secret, other.secret):
        assert secret not in dump and secret[:12] not in dump
        assert hashlib.sha256(secret.encode()).hexdigest() not in dump


def test_purge_removes_dead_keys_after_the_retention(make_services, operator, ctx):
    services = make_services(api_key_retention_days=7)
    ada = make_user(services, operator, ctx, "ada@example.com", roles=("admin",))
    keys = {
        name: _key(services, operator, ctx, ["users:read"], user_id=str(ada.id)).key.id
        for name in ("live", "revoked_old", "revoked_new", "expired_old", "expired_new")
    }
    now = services.clock.now()
    with services.db.write() as s:
        for name, revoked, expires in (
            ("revoked_old", now - timedelta(days=8), None),
            ("revoked_new", now - timedelta(days=6), None),
            ("expired_old", None, now - timedelta(days=8)),
            ("expired_new", None, now - timedelta(days=6)),
        ):
            s.execute(
                update(ApiKey)
                .where(ApiKey.id == keys[name])
                .values(revoked_at=revoked, expires_at=expires)
            )
    assert services.maintenance.purge(operator, ctx, dry_run=True).counts["api_keys"] == 1
    assert services.maintenance.purge(operator, ctx).counts["api_keys"] == 2
    left = {k.id for k in services.api_keys.list(operator).data}
    assert left == {keys["live"], keys["revoked_new"], keys["expired_new"]}


def test_a_service_account_never_logs_in_nor_gets_mail(services, operator, ctx):
    svc = _service_account(services, operator, ctx)
    assert svc.kind == "service"
    assert services.user_reads.get(operator, str(svc.id)).kind == "service"
    assert _mail_count(services) == 0  # no invitation
    with pytest.raises(InvalidCredentials):
        services.auth.login(ctx, {"username": "backup-cron", "password": "Whatever-123"})
    services.auth.forgot_password(ctx, {"email": "backup-cron@ops.example.com"})
    services.users.update(
        operator, ctx, str(svc.id), {"email": "backup@ops.example.com", "email_verified": False}
    )
    with pytest.raises(Conflict, match="service account"):
        services.users.set_password(operator, ctx, str(svc.id), "Corr3ct-Horse-Battery")
    with pytest.raises(Conflict, match="service account"):
        services.users.send_reset_link(operator, ctx, str(svc.id))
    with pytest.raises(Conflict, match="service account"):
        services.users.ensure(
            operator,
            ctx,
            {"email": "backup@ops.example.com", "password": "Corr3ct-Horse-Battery"},
        )
    assert _mail_count(services) == 0
    with services.db.read() as s:
        assert s.execute(select(func.count()).select_from(OneTimeToken)).scalar_one() == 0
    person = make_user(services, operator, ctx, "ada@example.com")
    assert person.kind == "person"


def test_a_service_account_needs_a_username_and_takes_no_password(services, operator, ctx):
    base = {"email": "svc@ops.example.com", "kind": "service"}
    with pytest.raises(ValidationError) as missing:
        services.users.create(operator, ctx, base)
    assert "username" in missing.value.field_errors
    with pytest.raises(ValidationError) as password:
        services.users.create(
            operator, ctx, {**base, "username": "svc", "password": "Corr3ct-Horse-Battery"}
        )
    assert "password" in password.value.field_errors
