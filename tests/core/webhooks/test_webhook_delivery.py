"""Delivery: at least once, with backoff, dead letter, disabling, races, kills and replays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta

from sqlalchemy import select

from usermgmt.core.models import MailMessage, WebhookDelivery
from usermgmt.core.services import build_services

from .receiver import Receiver

STRONG = "Corr3ct-Horse-Battery"


def rows(services) -> list[WebhookDelivery]:
    with services.db.read() as s:
        return list(s.execute(select(WebhookDelivery).order_by(WebhookDelivery.seq)).scalars())


def test_receiver_down_then_up_gets_each_event_once(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    subscribe()
    svc.users.create(operator, ctx, {"email": "ann@example.com", "password": STRONG})
    port = receiver.port
    receiver.stop()  # nothing listens: connection refused
    report = svc.webhooks.deliver_pending(limit=1)
    assert report.retried == 1
    [row] = rows(svc)
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, None)
    assert row.last_error
    receiver.port = port
    receiver.start()
    assert svc.webhooks.deliver_pending().delivered == 1
    assert svc.webhooks.deliver_pending().processed == 0
    assert [r.type for r in receiver.received] == ["user.created"]
    assert receiver.received[0].webhook_id == row.webhook_id and receiver.received[0].signature_ok
    [row] = rows(svc)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 2, 204)
    assert row.latency_ms is not None and row.delivered_at is not None
    assert svc.webhooks.list(operator).data[0].failing_since is None


def test_always_failing_dead_letters_then_disables_and_mails_the_admins(
    make_services, allow_private, clock, subscribe, receiver, admin_user, operator, ctx
):
    svc = make_services(
        clock=clock, webhook_backoff_base=0, webhook_max_attempts=3, webhook_disable_after=3600
    )
    created = subscribe(services=svc)
    wid = str(created.webhook.id)
    receiver.status = 500
    svc.users.create(operator, ctx, {"email": "bo@example.com", "password": STRONG})
    report = svc.webhooks.deliver_pending()
    assert (report.retried, report.failed, report.disabled) == (2, 1, 0)
    failed = svc.webhooks.deliveries(operator, wid, status="failed").data
    assert [(d.event_type, d.attempts, d.last_status_code) for d in failed] == [
        ("user.created", 3, 500)
    ]
    assert svc.webhooks.get(operator, wid).failing_since is not None
    assert svc.webhooks.get(operator, wid).enabled

    clock.advance(hours=2)  # still failing an hour past the limit
    svc.users.create(operator, ctx, {"email": "cy@example.com", "password": STRONG})
    report = svc.webhooks.deliver_pending()
    assert report.disabled == 1
    webhook = svc.webhooks.get(operator, wid)
    assert not webhook.enabled and "HTTP 500" in webhook.disabled_reason
    with svc.db.read() as s:
        mails = s.execute(
            select(MailMessage.to_addr, MailMessage.context).where(
                MailMessage.template == "webhook_disabled"
            )
        ).all()
    assert [(to, context["webhook_url"]) for to, context in mails] == [
        ("root@example.com", receiver.url)
    ]
    rendered = svc.mail.build(svc.mail._claim(10)[0])
    assert receiver.url in rendered.get_body(("plain",)).get_content()
    actions = [e.action for e in svc.audit.query(operator, {"action": "webhook.*"}).data]
    assert "webhook.disabled" in actions
    # Disabled: nothing new is queued, and what is pending waits.
    before = len(rows(svc))
    svc.users.create(operator, ctx, {"email": "di@example.com", "password": STRONG})
    assert len(rows(svc)) == before
    assert svc.webhooks.deliver_pending().processed == 0
    # Enabled again: the pending event goes out, and the dead letter on retry.
    receiver.status = 204
    svc.webhooks.update(operator, ctx, wid, {"enabled": True})
    assert svc.webhooks.deliver_pending().delivered == 1
    svc.webhooks.retry(operator, ctx, str(failed[0].id))
    assert svc.webhooks.deliver_pending().delivered == 1
    emails = [r.payload["data"]["user"]["email"] for r in receiver.received]
    assert emails[-2:] == ["cy@example.com", "bo@example.com"]


def test_two_deliverers_racing_deliver_each_event_once(
    database_url, make_services, allow_private, subscribe, receiver, operator, ctx
):
    svc = make_services()
    subscribe(services=svc)
    rows_in = [(i + 2, {"email": f"race{i}@example.com"}) for i in range(200)]
    svc.transfer.import_users(operator, ctx, rows_in)
    racers = [make_services(), make_services()]
    for racer in racers:
        racer.webhooks.batch_size = 10
    reports = []
    start = threading.Barrier(2)

    def run(racer):
        start.wait()
        reports.append(racer.webhooks.deliver_pending())

    threads = [threading.Thread(target=run, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    ids = receiver.ids()
    assert len(ids) == 200 and len(set(ids)) == 200, reports
    assert all(r.signature_ok for r in receiver.received)
    assert sum(r.delivered for r in reports) == 200
    assert all(r.delivered > 0 for r in reports)  # both took part
    assert {row.status for row in rows(svc)} == {"delivered"}


def test_a_deliverer_killed_mid_delivery_loses_nothing(
    database_url, hook_services, subscribe, receiver, operator, ctx, tmp_path
):
    svc = hook_services
    subscribe()
    svc.users.create(operator, ctx, {"email": "kill@example.com", "password": STRONG})
    receiver.hold = True
    process = subprocess.Popen(
        [sys.executable, "-m", "usermgmt", "--database-url", database_url, "webhooks", "deliver"],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "deliver.log", "wb"),  # noqa: SIM115
        env={**os.environ},
    )
    try:
        assert receiver.arrived.wait(60), (tmp_path / "deliver.log").read_text()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    receiver.hold = False
    receiver.release.set()
    [row] = rows(svc)
    assert row.status == "pending" and row.lease_until is not None  # claimed, never recorded
    assert svc.webhooks.deliver_pending().processed == 0  # its lease still holds
    svc.clock.set(row.lease_until + timedelta(seconds=1))  # the killed one leased by its clock
    assert svc.webhooks.deliver_pending().delivered == 1
    assert receiver.ids() == [row.webhook_id, row.webhook_id]  # at least once, same id
    assert rows(svc)[0].status == "delivered"


def test_replay_sends_a_subscriptions_events_since_a_time_again(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    created = subscribe()
    wid = str(created.webhook.id)
    svc.users.create(operator, ctx, {"email": "old@example.com", "password": STRONG})
    svc.webhooks.deliver_pending()
    cut = svc.clock.advance(seconds=1)  # the events from here on are after the cut
    first = svc.users.create(operator, ctx, {"email": "new@example.com", "password": STRONG})
    svc.users.lock(operator, ctx, str(first.id), None)
    svc.webhooks.deliver_pending()
    delivered = receiver.ids()
    assert len(delivered) == 3
    out = svc.webhooks.replay(operator, ctx, wid, {"since": cut.isoformat()})
    assert out.replayed == 2
    svc.webhooks.deliver_pending()
    assert receiver.ids()[3:] == delivered[1:]  # same ids, same order
    assert [r.type for r in receiver.received[3:]] == ["user.created", "user.locked"]
    actions = [e.action for e in svc.audit.query(operator, {"action": "webhook.*"}).data]
    assert "webhook.replayed" in actions


def test_a_test_event_goes_to_its_subscription_alone(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    other = Receiver().start()
    try:
        mine = subscribe()
        subscribe(target=other)
        queued = svc.webhooks.test(operator, ctx, str(mine.webhook.id))
        svc.webhooks.deliver_pending()
        assert [r.type for r in receiver.received] == ["webhook.test"]
        assert receiver.received[0].webhook_id == queued.webhook_id
        assert receiver.received[0].signature_ok and other.received == []
    finally:
        other.stop()


def test_the_server_delivers_in_the_background(
    database_url, subscribe, receiver, hook_services, operator, ctx
):
    """The deliverer `usermgmt serve` runs: a commit wakes it, no cron needed."""
    from usermgmt.core.config import load_settings
    from usermgmt.core.webhooks.delivery import BackgroundDeliverer

    subscribe()
    server_side = build_services(load_settings(database_url=database_url))
    deliverer = BackgroundDeliverer(server_side, interval=30)
    deliverer.start()
    try:
        server_side.users.create(operator, ctx, {"email": "bg@example.com", "password": STRONG})
        assert receiver.arrived.wait(20)
    finally:
        deliverer.stop()
        server_side.close()
    assert [r.type for r in receiver.received] == ["user.created"]


def test_redirects_are_not_followed_and_answers_are_read_only_so_far(
    hook_services, subscribe, receiver, operator, ctx
):
    svc = hook_services
    elsewhere = Receiver().start()
    try:
        wid = str(subscribe().webhook.id)
        receiver.status = 307
        receiver.headers = {"location": elsewhere.url}
        svc.users.create(operator, ctx, {"email": "re@example.com", "password": STRONG})
        svc.webhooks.deliver_pending(limit=1)
        [row] = svc.webhooks.deliveries(operator, wid).data
        assert (row.status, row.last_status_code) == ("pending", 307)
        assert row.last_error.startswith("redirect not followed") and elsewhere.received == []
        receiver.status, receiver.headers = 500, {}
        receiver.body = b"\x1b[31m" + b"x" * 5_000_000  # a huge answer with an escape code
        svc.webhooks.deliver_pending(limit=1)
        [row] = svc.webhooks.deliveries(operator, wid).data
        assert row.last_status_code == 500 and len(row.last_error) <= 300
        assert "\x1b" not in row.last_error
    finally:
        elsewhere.stop()


def test_each_attempt_has_a_timeout(
    make_services, allow_private, subscribe, receiver, operator, ctx
):
    svc = make_services(webhook_timeout=0.5, webhook_backoff_base=3600)
    subscribe(services=svc)
    receiver.hold = True  # answers only when released
    svc.users.create(operator, ctx, {"email": "slow@example.com", "password": STRONG})
    report = svc.webhooks.deliver_pending()
    assert report.retried == 1
    [row] = rows(svc)
    assert row.last_error == "timed out" and row.status == "pending"


def test_a_server_killed_mid_delivery_loses_nothing(
    database_url, hook_services, subscribe, receiver, operator, ctx, tmp_path
):
    """`usermgmt serve` delivers in its background thread; kill -9 while a receiver holds the
    request, and the event still goes out (once the lease expires), with the same id."""
    from api.api_helpers import LiveServer, free_port, wait_ready

    svc = hook_services
    subscribe()
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermgmt.api.server", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "USERMGMT_DATABASE_URL": database_url},
        )  # fmt: skip
    server = LiveServer(process, port, log_path)
    try:
        wait_ready(server)
        receiver.hold = True
        svc.users.create(operator, ctx, {"email": "srv@example.com", "password": STRONG})
        assert receiver.arrived.wait(60), server.log()  # the server's deliverer polls
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    receiver.hold = False
    receiver.release.set()
    [row] = rows(svc)
    assert row.status == "pending" and row.lease_until is not None
    svc.clock.set(row.lease_until + timedelta(seconds=1))  # the killed one leased by its clock
    assert svc.webhooks.deliver_pending().delivered == 1
    assert receiver.ids() == [row.webhook_id, row.webhook_id]
