"""One action on many users (UserService.bulk), on both databases: what is changed,
what is counted as failed, and that the audit log reads as the single calls write it."""

from __future__ import annotations

import uuid

import pytest

from usermgmt.core import errors

from ..helpers import login, make_user


def _users(services, operator, ctx, n, prefix="bulk"):
    return [make_user(services, operator, ctx, f"{prefix}{i}@example.com") for i in range(n)]


def _events(services, operator, user_id):
    return services.audit.query(operator, {"target_id": str(user_id)}).data


def test_bulk_lock_changes_each_user_and_audits_as_a_single_lock(services, operator, ctx):
    users = _users(services, operator, ctx, 3)
    single = make_user(services, operator, ctx, "single@example.com")
    signed_in = login(services, ctx, users[0].email)
    services.users.lock(operator, ctx, str(single.id))
    ids = [str(u.id) for u in users]

    outcome = services.users.bulk(operator, ctx, "lock", ids)

    assert outcome.done == ids and outcome.failed == []
    for user in users:
        after = services.user_reads.get(operator, str(user.id))
        assert after.status == "locked"
        event = _events(services, operator, user.id)[0]
        assert event.action == "user.locked" and event.request_id == ctx.request_id
        assert event.changes == _events(services, operator, single.id)[0].changes
    with pytest.raises(errors.DomainError):  # the lock revoked the sessions
        services.auth.refresh(ctx, {"refresh_token": signed_in.tokens.refresh_token})
    assert services.audit.verify(operator).ok


def test_bulk_counts_what_cannot_be_done_and_does_the_rest(services, operator, ctx):
    admin = make_user(services, operator, ctx, "only-admin@example.com", roles=["admin"])
    users = _users(services, operator, ctx, 2)
    services.users.delete(operator, ctx, str(users[1].id))
    missing = str(uuid.uuid4())
    ids = [str(users[0].id), str(admin.id), str(users[1].id), missing, "not-an-id"]

    outcome = services.users.bulk(operator, ctx, "lock", ids, minutes=30)

    assert outcome.done == [str(users[0].id)]
    failed = {f.user_id: f.code for f in outcome.failed}
    assert failed == {
        str(admin.id): "CONFLICT",  # the last active admin
        str(users[1].id): "NOT_FOUND",  # deleted
        missing: "NOT_FOUND",
        "not-an-id": "NOT_FOUND",
    }
    assert services.user_reads.get(operator, str(admin.id)).locked_until is None
    assert [e.action for e in _events(services, operator, admin.id)] == ["user.created"]


def test_bulk_unlock_delete_restore_and_sign_out(services, operator, ctx):
    users = _users(services, operator, ctx, 2)
    ids = [str(u.id) for u in users]
    services.users.bulk(operator, ctx, "lock", ids)
    assert services.users.bulk(operator, ctx, "unlock", ids).done == ids
    assert all(services.user_reads.get(operator, i).status != "locked" for i in ids)

    session = login(services, ctx, users[0].email)
    signed_out = services.users.bulk(operator, ctx, "sign_out", ids)
    assert signed_out.done == ids
    with pytest.raises(errors.DomainError):
        services.auth.refresh(ctx, {"refresh_token": session.tokens.refresh_token})
    assert _events(services, operator, users[0].id)[0].changes == {"all": True, "count": 1}

    restored = services.users.bulk(operator, ctx, "restore", ids)  # not deleted: conflicts
    assert restored.done == [] and {f.code for f in restored.failed} == {"CONFLICT"}
    assert services.users.bulk(operator, ctx, "delete", ids).done == ids
    assert services.user_reads.list(operator).meta.total == 0
    assert services.users.bulk(operator, ctx, "restore", ids).done == ids
    assert services.user_reads.list(operator).meta.total == 2


def test_bulk_refuses_an_unknown_action_and_too_many_ids(services, operator, ctx):
    with pytest.raises(errors.ValidationError):
        services.users.bulk(operator, ctx, "purge", [])
    with pytest.raises(errors.ValidationError):
        services.users.bulk(operator, ctx, "lock", [str(uuid.uuid4())] * 1001)
    with pytest.raises(errors.ValidationError):
        services.users.bulk(operator, ctx, "lock", [], minutes=0)


def test_bulk_unlock_audits_as_a_single_unlock_and_clears_login_blocks(
    make_services, operator, ctx
):
    services = make_services(lockout_threshold=1)
    users = _users(services, operator, ctx, 3)
    for user in users:
        with pytest.raises(errors.DomainError):  # one failure blocks the identifier
            login(services, ctx, user.email, password="wrong-password-1")
    single, *many = users
    services.users.bulk(operator, ctx, "lock", [str(u.id) for u in users])

    services.users.unlock(operator, ctx, str(single.id))
    outcome = services.users.bulk(operator, ctx, "unlock", [str(u.id) for u in many])

    assert outcome.done == [str(u.id) for u in many]
    expected = _events(services, operator, single.id)[0].changes
    assert expected["login_blocks_cleared"] == 1
    for user in many:
        assert _events(services, operator, user.id)[0].changes == expected
        login(services, ctx, user.email)  # no block left


def test_bulk_changes_queue_their_webhook_events_with_the_user_as_changed(
    make_services, operator, ctx
):
    services = make_services(webhook_allow_private=True)
    hook = services.webhooks.create(
        operator, ctx, {"url": "http://127.0.0.1/hook", "events": ["*"]}
    )
    users = _users(services, operator, ctx, 2)
    services.users.bulk(operator, ctx, "lock", [str(u.id) for u in users])

    from sqlalchemy import select

    from usermgmt.core.models import WebhookDelivery

    with services.db.read() as s:
        payloads = s.execute(
            select(WebhookDelivery.payload).where(
                WebhookDelivery.subscription_id == hook.webhook.id,
                WebhookDelivery.event_type == "user.locked",
            )
        ).scalars()
        users_sent = {p["data"]["user"]["email"]: p["data"]["user"]["status"] for p in payloads}
    assert users_sent == {u.email: "locked" for u in users}
