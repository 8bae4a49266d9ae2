"""Events: one per change, whichever service made it, written with the change or not at all."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from sqlalchemy import func, select

from usermgmt.core import audit
from usermgmt.core.errors import EmailExists, ValidationError
from usermgmt.core.ids import SequentialIds
from usermgmt.core.models import MailMessage, WebhookDelivery, WebhookSubscription
from usermgmt.core.webhooks import events, signing

STRONG = "Corr3ct-Horse-Battery"
NEW_PASSWORD = "Sec0nd-Horse-Battery"


def deliveries(services) -> int:
    with services.db.read() as s:
        return s.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one()


def test_signature_matches_the_standard_webhooks_example():
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    assert signing.verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, expected)
    assert not signing.verify(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, expected)


def test_new_secrets_are_whsec_and_at_least_24_random_bytes():
    secret = signing.new_secret()
    assert secret.startswith("whsec_") and len(signing.secret_bytes(secret)) >= 24
    assert signing.new_secret() != secret


def test_every_user_change_from_the_core_is_delivered_signed(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    subscribe()
    user = svc.auth.register(ctx, {"email": "ann@example.com", "password": STRONG}).user
    uid = str(user.id)
    with svc.db.read() as s:
        token = s.execute(
            select(MailMessage.context).where(MailMessage.template == "verify_email")
        ).scalar_one()["token"]
    svc.auth.verify_email(ctx, {"token": token})
    svc.users.update(operator, ctx, uid, {"first_name": "Ann"})
    svc.roles.set(operator, ctx, uid, ["moderator"])
    svc.users.set_password(operator, ctx, uid, NEW_PASSWORD)
    svc.auth.login(ctx, {"email": "ann@example.com", "password": NEW_PASSWORD})
    svc.sessions.revoke_all(operator, ctx, uid)
    svc.users.lock(operator, ctx, uid, None)
    svc.users.unlock(operator, ctx, uid)
    svc.users.delete(operator, ctx, uid)
    svc.users.restore(operator, ctx, uid)
    report = svc.webhooks.deliver_pending()

    expected = [
        "user.created", "user.email_verified", "user.updated", "user.roles_changed",
        "user.password_changed", "session.revoked", "user.locked", "user.unlocked",
        "user.deleted", "user.restored",
    ]  # fmt: skip
    assert [r.type for r in receiver.received] == expected
    assert report.delivered == len(expected)
    assert all(r.signature_ok for r in receiver.received)
    assert len(set(receiver.ids())) == len(expected)
    for r in receiver.received:
        assert set(r.payload) == {"type", "timestamp", "data"}
        assert r.payload["data"]["user"]["id"] == uid
    assert receiver.of_type("user.updated")[0].payload["data"]["user"]["first_name"] == "Ann"
    assert receiver.of_type("user.roles_changed")[0].payload["data"]["user"]["roles"] == [
        "moderator"
    ]
    assert receiver.of_type("user.deleted")[0].payload["data"]["user"]["status"] == "deleted"
    bodies = json.dumps([r.payload for r in receiver.received])
    for secret in ("password_hash", "$2b$", token, NEW_PASSWORD, STRONG, "refresh_token"):
        assert secret not in bodies


def test_logins_and_mail_are_not_events(hook_services, subscribe, receiver, operator, ctx):
    svc = hook_services
    svc.users.create(operator, ctx, {"email": "bo@example.com", "password": STRONG})
    subscribe()
    svc.auth.login(ctx, {"email": "bo@example.com", "password": STRONG})
    svc.auth.forgot_password(ctx, {"email": "bo@example.com"})
    assert deliveries(svc) == 0


def test_second_factor_audit_actions_map_to_mfa_changed():
    assert events.event_type_for("user.mfa_enabled") == "user.mfa_changed"
    assert events.event_type_for("user.mfa_reset") == "user.mfa_changed"
    assert events.event_type_for("auth.login") is None
    assert set(events.EVENT_TYPES) >= {
        "user.created", "user.updated", "user.deleted", "user.restored", "user.locked",
        "user.unlocked", "user.roles_changed", "user.password_changed",
        "user.email_verified", "user.mfa_changed", "session.revoked",
    }  # fmt: skip


def test_deliveries_take_their_time_and_ids_from_the_services(
    make_services, allow_private, clock, subscribe, operator, ctx
):
    svc = make_services(clock=clock, ids=SequentialIds("hooks"))
    hook = subscribe(services=svc)
    clock.advance(minutes=5)
    svc.users.create(operator, ctx, {"email": "ids@example.com", "password": STRONG})
    with svc.db.read() as s:
        row = s.execute(select(WebhookDelivery)).scalar_one()
    assert row.created_at == row.next_attempt_at == clock.now()
    assert row.payload["timestamp"] == events.timestamp(clock.now())
    replay = SequentialIds("hooks")
    issued = {replay.new_uuid() for _ in range(40)}
    assert {hook.webhook.id, row.id, uuid.UUID(row.webhook_id.removeprefix("msg_"))} <= issued


def test_a_rolled_back_change_emits_nothing(hook_services, subscribe, operator, ctx):
    svc = hook_services
    subscribe()
    user = svc.users.create(operator, ctx, {"email": "cy@example.com", "password": STRONG})
    assert deliveries(svc) == 1
    with pytest.raises(EmailExists):
        svc.users.create(operator, ctx, {"email": "cy@example.com", "password": STRONG})
    with pytest.raises(RuntimeError), svc.db.write() as s:
        audit.record(
            s, operator, ctx, "user.updated", user.id, {"first_name": "X"},
            at=svc.clock.now(), ids=svc.ids,
        )  # fmt: skip
        assert s.execute(select(func.count()).select_from(WebhookDelivery)).scalar_one() == 2
        raise RuntimeError("the change fails after its audit event")
    assert deliveries(svc) == 1


def test_an_import_emits_one_event_per_user(hook_services, subscribe, receiver, operator, ctx):
    svc = hook_services
    subscribe(events=["user.created", "user.updated"])
    rows = [(i + 2, {"email": f"imp{i}@example.com", "roles": ["user"]}) for i in range(120)]
    report = svc.transfer.import_users(operator, ctx, rows)
    assert report.created == 120
    svc.transfer.import_users(
        operator, ctx, [(2, {"email": "imp0@example.com", "first_name": "Zed"})],
        on_conflict="update",
    )  # fmt: skip
    svc.webhooks.deliver_pending()
    created = receiver.of_type("user.created")
    assert sorted(r.payload["data"]["user"]["email"] for r in created) == sorted(
        f"imp{i}@example.com" for i in range(120)
    )
    updated = receiver.of_type("user.updated")
    assert [r.payload["data"]["user"]["first_name"] for r in updated] == ["Zed"]


def test_a_subscription_gets_only_its_event_types(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    subscribe(events=["user.deleted"])
    user = svc.users.create(operator, ctx, {"email": "di@example.com", "password": STRONG})
    svc.users.lock(operator, ctx, str(user.id), None)
    svc.users.delete(operator, ctx, str(user.id))
    svc.webhooks.deliver_pending()
    assert [r.type for r in receiver.received] == ["user.deleted"]


def test_a_users_events_stay_in_order_per_subscription(
    make_services, allow_private, clock, subscribe, receiver, operator, ctx
):
    svc = make_services(clock=clock, webhook_backoff_base=3600)
    subscribe(services=svc)
    ann = svc.users.create(operator, ctx, {"email": "ann@example.com", "password": STRONG})
    receiver.status = 500
    assert svc.webhooks.deliver_pending().retried == 1  # next try in about an hour
    svc.users.lock(operator, ctx, str(ann.id), None)
    bob = svc.users.create(operator, ctx, {"email": "bob@example.com", "password": STRONG})
    receiver.status = 204
    receiver.received.clear()
    svc.webhooks.deliver_pending()
    # Ann's lock waits behind her creation; Bob's events are not held up by hers.
    assert [(r.type, r.payload["data"]["user"]["id"]) for r in receiver.received] == [
        ("user.created", str(bob.id))
    ]
    svc.webhooks.clock.advance(hours=3)
    svc.webhooks.deliver_pending()
    anns = [r.type for r in receiver.received if r.payload["data"]["user"]["id"] == str(ann.id)]
    assert anns == ["user.created", "user.locked"]


def test_private_targets_are_refused_without_the_setting(make_services, operator, ctx):
    svc = make_services()
    for url in (
        "http://127.0.0.1:9/hooks",
        "http://localhost/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.8/hooks",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "ftp://example.com/hooks",
        "https://user:pw@example.com/hooks",
    ):
        with pytest.raises(ValidationError) as raised:
            svc.webhooks.create(operator, ctx, {"url": url, "events": ["*"]})
        assert "url" in raised.value.field_errors
    with pytest.raises(ValidationError) as raised:
        svc.webhooks.create(operator, ctx, {"url": "http://127.0.0.1/h", "events": ["*"]})
    assert "USERMGMT_WEBHOOK_ALLOW_PRIVATE" in str(raised.value.field_errors)


def test_private_targets_are_refused_again_at_delivery(
    make_services, subscribe, receiver, operator, ctx, monkeypatch
):
    subscribe()  # made while private addresses were allowed
    monkeypatch.delenv("USERMGMT_WEBHOOK_ALLOW_PRIVATE")
    strict = make_services(webhook_backoff_base=3600)
    strict.users.create(operator, ctx, {"email": "ed@example.com", "password": STRONG})
    report = strict.webhooks.deliver_pending()
    assert report.retried == 1 and receiver.received == []
    webhook = strict.webhooks.list(operator).data[0]
    page = strict.webhooks.deliveries(operator, str(webhook.id))
    assert "non-public address" in page.data[0].last_error


def test_the_secret_is_encrypted_at_rest_and_never_shown_again(
    hook_services, subscribe, receiver, operator, ctx, caplog
):
    svc = hook_services
    caplog.set_level(logging.DEBUG)
    created = subscribe()
    secret = created.secret
    svc.users.create(operator, ctx, {"email": "fi@example.com", "password": STRONG})
    svc.webhooks.deliver_pending()
    assert receiver.received[0].signature_ok
    with svc.db.read() as s:
        stored = s.execute(select(WebhookSubscription.secret_encrypted)).scalar_one()
        trail = json.dumps([e.changes for e in svc.audit.query(operator, {}).data], default=str)
    assert secret not in stored and signing.secret_bytes(secret).hex() not in stored
    shown = (
        svc.webhooks.list(operator).model_dump_json()
        + svc.webhooks.get(operator, str(created.webhook.id)).model_dump_json()
        + svc.webhooks.deliveries(operator, str(created.webhook.id)).model_dump_json()
    )
    assert secret not in shown and secret not in trail and secret not in caplog.text
    assert "whsec_" not in shown
