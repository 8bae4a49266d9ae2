"""Delivery against a real SMTP server on loopback, on both databases."""

from __future__ import annotations

import logging
import re
import threading
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import (
    Conflict,
    DatabaseUnavailable,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from usermgmt.core.mail import BackgroundDeliverer
from usermgmt.core.models import MailMessage
from usermgmt.core.services import outbox

from .conftest import SmtpServer
from .helpers import SMTP_PASSWORD, SMTP_USER, check_login, free_port

NEW_PASSWORD = "N3w-Reset-Passw0rd!"
USER_PASSWORD = "Us3r-Passw0rd-Long"
TOKEN_RE = re.compile(r"[?&]token=([A-Za-z0-9_\-]+)")


def rows(services) -> list[MailMessage]:
    with services.db.read() as s:
        return list(s.execute(select(MailMessage).order_by(MailMessage.created_at)).scalars())


def only_row(services) -> MailMessage:
    (row,) = rows(services)
    return row


def make_user(services, operator, ctx, email="ada@example.com", **extra):
    return services.users.create(
        operator, ctx, {"email": email, "password": USER_PASSWORD, **extra}
    )


def clear_outbox(services) -> None:
    with services.db.write() as s:
        s.execute(MailMessage.__table__.delete())


def enqueue_many(services, n: int) -> None:
    with services.db.write() as s:
        for i in range(n):
            outbox.enqueue(
                s, services.settings, "password_changed", f"u{i}@example.com",
                user_id=None, context={}, now=services.clock.now(), ids=services.ids,
            )  # fmt: skip


def test_reset_link_arrives_and_works(smtp_services, smtp_server, operator, ctx, caplog):
    services = smtp_services
    user = make_user(services, operator, ctx, first_name="Ada")
    clear_outbox(services)  # user creation with a password sends nothing, but be explicit
    caplog.set_level(logging.DEBUG, logger="usermgmt")

    services.auth.forgot_password(ctx, {"email": "ADA@example.com"})
    report = services.mail.deliver_pending()

    assert (report.sent, report.failed, report.retried) == (1, 0, 0)
    (got,) = smtp_server.received
    msg = got.message
    row = only_row(services)
    assert got.rcpt_tos == ["ada@example.com"]
    assert got.mail_from == services.settings.mail_from
    assert msg["Message-ID"] == row.message_id
    assert msg["Subject"] == "Reset your password"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Hello Ada," in text
    assert "http://127.0.0.1:8000/reset-password?token=" in text
    (token,) = set(TOKEN_RE.findall(text))
    assert f"token={token}" in html

    services.auth.reset_password(ctx, {"token": token, "new_password": NEW_PASSWORD})
    result = services.auth.login(ctx, {"email": "ada@example.com", "password": NEW_PASSWORD})
    assert result.user.id == user.id

    # The reset queued a "password changed" notice; the reset mail itself is done.
    assert sorted(r.template for r in rows(services)) == ["password_changed", "password_reset"]
    sent = next(r for r in rows(services) if r.template == "password_reset")
    assert sent.status == "sent" and sent.attempts == 1 and sent.sent_at is not None
    assert "token" not in sent.context and "link" not in sent.context
    assert sent.lease_until is None
    assert all(token not in r.getMessage() for r in caplog.records)
    (logged,) = [r for r in caplog.records if getattr(r, "mail_id", None) == str(sent.id)]
    assert logged.mail_template == "password_reset" and logged.mail_to == "ada@example.com"


def test_every_template_renders_text_and_html(smtp_services, smtp_server, operator, ctx):
    services = smtp_services
    services.auth.register(ctx, {"email": "reg@example.com", "password": USER_PASSWORD})
    invited = services.users.create(
        operator, ctx, {"email": "inv@example.com", "first_name": "<b>Bob</b>"}
    )
    services.users.update(operator, ctx, str(invited.id), {"email": "bob@example.com"})
    services.users.set_password(operator, ctx, str(invited.id), NEW_PASSWORD)

    report = services.mail.deliver_pending()

    by_subject = {r.message["Subject"]: r for r in smtp_server.received}
    assert report.sent == len(smtp_server.received) == 5
    assert sorted(r.message["Subject"] for r in smtp_server.received) == [
        "Confirm your email address",  # registration
        "Confirm your email address",  # the invited user's new address
        "Your account at 127.0.0.1:8000 is ready",
        "Your email address was changed",
        "Your password was changed",
    ]
    templates = sorted(r.template for r in rows(services))
    assert templates == [
        "email_changed", "invitation", "password_changed", "verify_email", "verify_email",
    ]  # fmt: skip
    for received in smtp_server.received:
        msg = received.message
        text = msg.get_body(("plain",)).get_content()
        html = msg.get_body(("html",)).get_content()
        assert text.strip() and "<html" in html
        assert "$" not in text and "$" not in html
        assert "<b>Bob</b>" not in html  # names are escaped in HTML
    invite = by_subject["Your account at 127.0.0.1:8000 is ready"].message
    assert "/accept-invite?token=" in invite.get_body(("plain",)).get_content()
    assert "&lt;b&gt;Bob&lt;/b&gt;" in invite.get_body(("html",)).get_content()
    changed = by_subject["Your email address was changed"]
    assert changed.rcpt_tos == ["inv@example.com"]  # the old address
    assert "bob@example.com" in changed.message.get_body(("plain",)).get_content()


def test_smtp_down_then_up_is_retried_and_delivered_once(make_services, clock, caplog):
    port = free_port()  # nothing listens yet
    services = make_services(smtp_url=f"smtp://127.0.0.1:{port}", clock=clock)
    enqueue_many(services, 1)

    report = services.mail.deliver_pending()
    assert (report.sent, report.failed, report.retried) == (0, 0, 1)
    row = only_row(services)
    assert row.status == "pending" and row.attempts == 1 and row.lease_until is None
    assert "refused" in row.last_error.lower()
    assert row.next_attempt_at > clock.now()
    # Not due yet: a second run does nothing.
    assert services.mail.deliver_pending().processed == 0

    server = SmtpServer(port=port).start()
    try:
        clock.advance(hours=7)  # past the longest backoff
        report = services.mail.deliver_pending()
        assert report.sent == 1
        assert services.mail.deliver_pending().processed == 0
        clock.advance(days=1)
        assert services.mail.deliver_pending().processed == 0
    finally:
        server.stop()
    assert server.handler.message_ids() == [row.message_id]
    row = only_row(services)
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None


def test_rejecting_server_dead_letters_after_max_attempts(make_services, clock, ctx, caplog):
    server = SmtpServer(authenticator=check_login, auth_require_tls=False).start()
    server.handler.reject_rcpt = "550 5.1.1 No such mailbox"
    try:
        url = f"smtp://{SMTP_USER}:{SMTP_PASSWORD}@127.0.0.1:{server.port}"
        services = make_services(smtp_url=url, mail_max_attempts=3, clock=clock)
        caplog.set_level(logging.DEBUG, logger="usermgmt")
        enqueue_many(services, 1)
        reports = []
        for _ in range(3):
            reports.append(services.mail.deliver_pending())
            clock.advance(hours=7)
        assert [(r.sent, r.failed, r.retried) for r in reports] == [
            (0, 0, 1), (0, 0, 1), (0, 1, 0),
        ]  # fmt: skip
        assert services.mail.deliver_pending().processed == 0
    finally:
        server.stop()
    assert server.received == []
    row = only_row(services)
    assert row.status == "failed" and row.attempts == 3
    assert "550" in row.last_error and "No such mailbox" in row.last_error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed for good" in logged
    assert SMTP_PASSWORD not in logged and SMTP_PASSWORD not in row.last_error

    # An operator sends it again: back to pending with fresh attempts, audited.
    operator = Actor.operator("cli", "tester")
    listed = services.mail.list(operator, status="failed")
    assert [m.id for m in listed.data] == [row.id]
    out = services.mail.retry(operator, ctx, str(row.id))
    assert out.status == "pending" and out.attempts == 0
    events = services.audit.query(operator, {"action": "mail.retried"}).data
    assert len(events) == 1 and events[0].changes["mail_id"] == str(row.id)
    assert services.mail.list(operator, status="failed").data == []


def test_one_refused_recipient_does_not_hold_up_the_others(smtp_services, smtp_server):
    services = smtp_services
    services.mail.batch_size = 10
    smtp_server.handler.reject_to = {"u1@example.com"}
    enqueue_many(services, 4)
    report = services.mail.deliver_pending()
    assert (report.sent, report.failed, report.retried) == (3, 0, 1)
    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == [
        "u0@example.com", "u2@example.com", "u3@example.com",
    ]  # fmt: skip
    (refused,) = [r for r in rows(services) if r.status == "pending"]
    assert refused.to_addr == "u1@example.com" and "550" in refused.last_error


def test_wrong_smtp_password_is_retried_and_not_leaked(make_services, caplog):
    server = SmtpServer(authenticator=check_login, auth_require_tls=False).start()
    try:
        services = make_services(
            smtp_url=f"smtp://{SMTP_USER}:wrong-{SMTP_PASSWORD}@127.0.0.1:{server.port}"
        )
        caplog.set_level(logging.DEBUG, logger="usermgmt")
        enqueue_many(services, 3)
        report = services.mail.deliver_pending()
    finally:
        server.stop()
    # A login failure means nothing can be sent: the batch is charged, the run stops.
    assert (report.sent, report.retried) == (0, 3)
    assert server.received == []
    for row in rows(services):
        assert "535" in row.last_error
        assert SMTP_PASSWORD not in row.last_error
    assert all(SMTP_PASSWORD not in r.getMessage() for r in caplog.records)


def test_two_deliverers_racing_send_each_message_once(make_services, smtp_server):
    first = make_services(smtp_url=smtp_server.url)
    second = make_services(smtp_url=smtp_server.url)
    first.mail.batch_size = second.mail.batch_size = 3
    enqueue_many(first, 30)
    expected = {r.message_id for r in rows(first)}
    start = threading.Barrier(2)
    reports = {}

    def work(name, services):
        start.wait()
        reports[name] = services.mail.deliver_pending(worker_id=name)

    threads = [
        threading.Thread(target=work, args=("one", first)),
        threading.Thread(target=work, args=("two", second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = smtp_server.handler.message_ids()
    assert len(ids) == 30 and set(ids) == expected  # each exactly once
    assert reports["one"].sent + reports["two"].sent == 30
    assert {r.status for r in rows(first)} == {"sent"}


def test_crashed_deliverer_lease_expires_and_same_message_id_is_sent(
    make_services, smtp_server, clock
):
    services = make_services(smtp_url=smtp_server.url, clock=clock)
    enqueue_many(services, 1)
    claimed = services.mail._claim(10)  # a deliverer claims, then dies before sending
    assert len(claimed) == 1
    assert services.mail.deliver_pending().processed == 0  # leased: nobody else takes it

    clock.advance(minutes=11)  # the lease (10 min) ran out
    assert services.mail.deliver_pending().sent == 1
    assert smtp_server.handler.message_ids() == [claimed[0].message_id]


def test_limit_and_batches(smtp_services, smtp_server):
    services = smtp_services
    services.mail.batch_size = 4
    enqueue_many(services, 10)
    assert services.mail.deliver_pending(limit=6).sent == 6
    assert services.mail.deliver_pending().sent == 4
    assert len(smtp_server.received) == 10
    with pytest.raises(ValidationError):
        services.mail.deliver_pending(limit=0)


def test_list_and_retry_rules(make_services, smtp_server, operator, ctx, clock):
    services = make_services(smtp_url=smtp_server.url, clock=clock)
    enqueue_many(services, 2)
    services.mail.deliver_pending(limit=1)
    listed = services.mail.list(operator)
    assert [m.status for m in listed.data].count("sent") == 1
    assert all("context" not in m.model_dump() for m in listed.data)
    sent = services.mail.list(operator, status="sent").data[0]
    pending = services.mail.list(operator, status="pending").data[0]
    assert sent.sent_at is not None and sent.next_attempt_at is None
    assert pending.next_attempt_at is not None

    with pytest.raises(Conflict):
        services.mail.retry(operator, ctx, str(sent.id))
    with pytest.raises(NotFound):
        services.mail.retry(operator, ctx, str(uuid.uuid4()))
    with pytest.raises(NotFound):
        services.mail.retry(operator, ctx, "not-a-uuid")
    with pytest.raises(ValidationError):
        services.mail.list(operator, status="bogus")
    with pytest.raises(ValidationError):
        services.mail.list(operator, limit=0)

    # A pending message waiting for its backoff becomes due now.
    with services.db.write() as s:
        s.execute(
            update(MailMessage)
            .where(MailMessage.id == pending.id)
            .values(attempts=2, next_attempt_at=clock.now() + timedelta(hours=3))
        )
    assert services.mail.deliver_pending().processed == 0
    out = services.mail.retry(operator, ctx, str(pending.id))
    assert out.status == "pending" and out.attempts == 2
    assert services.mail.deliver_pending().sent == 1

    user = make_user(services, operator, ctx)
    token = services.auth.login(ctx, {"email": user.email, "password": USER_PASSWORD})
    actor = services.auth.authenticate_token(token.tokens.access_token)
    with pytest.raises(PermissionDenied):
        services.mail.list(actor)
    with pytest.raises(PermissionDenied):
        services.mail.retry(actor, RequestContext(), str(pending.id))


def test_background_deliverer_is_woken_by_a_commit_that_enqueued_mail(
    smtp_services, smtp_server, operator, ctx
):
    services = smtp_services
    deliverer = BackgroundDeliverer(services, interval=3600)  # it would not poll again
    deliverer.start()
    try:
        enqueue_many(services, 1)
        services.users.send_reset_link(operator, ctx, str(make_user(services, operator, ctx).id))
        for _ in range(400):
            if len(smtp_server.received) == 2:
                break
            threading.Event().wait(0.025)
    finally:
        deliverer.stop()
    assert not deliverer.running
    assert len(smtp_server.received) == 2
    assert {r.status for r in rows(services)} == {"sent"}


def test_background_deliverer_survives_a_database_outage(
    smtp_services, smtp_server, caplog, monkeypatch
):
    services = smtp_services
    deliverer = BackgroundDeliverer(services, interval=60)
    caplog.set_level(logging.WARNING, logger="usermgmt.mail")
    monkeypatch.setattr(services.mail, "_claim", _raise_unavailable)
    assert deliverer.run_once() is False
    assert "mail delivery skipped" in caplog.text
    monkeypatch.undo()
    enqueue_many(services, 1)
    assert deliverer.run_once() is False  # a partial batch: wait for the next tick
    assert len(smtp_server.received) == 1


def _raise_unavailable(size):
    raise DatabaseUnavailable()


def test_enqueue_listeners_fire_once_per_commit_and_never_on_rollback(services):
    calls = []

    def listener():
        calls.append(1)

    outbox.add_listener(listener)
    try:
        with pytest.raises(RuntimeError), services.db.write() as s:
            outbox.enqueue(
                s,
                services.settings,
                "password_changed",
                "a@example.com",
                user_id=None,
                context={},
                now=services.clock.now(),
                ids=services.ids,
            )
            raise RuntimeError("rolled back")
        assert calls == []
        enqueue_many(services, 3)  # one transaction, three messages
        assert calls == [1]
        with services.db.write() as s:
            pass  # a commit without mail
        assert calls == [1]
    finally:
        outbox.remove_listener(listener)
    enqueue_many(services, 1)
    assert calls == [1]
    assert len(rows(services)) == 4


def test_postgres_claims_skip_rows_another_deliverer_holds(smtp_services, smtp_server, backend):
    if backend != "postgres":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's; SQLite serialises claims")
    from sqlalchemy import text

    services = smtp_services
    enqueue_many(services, 3)
    with services.db.engine.connect() as conn, conn.begin():
        # Another deliverer is in the middle of claiming two of the rows.
        conn.execute(text("SELECT id FROM mail_outbox ORDER BY created_at LIMIT 2 FOR UPDATE"))
        report = services.mail.deliver_pending()  # neither waits nor takes them
        assert report.sent == 1
    assert services.mail.deliver_pending().sent == 2
    assert len(set(smtp_server.handler.message_ids())) == 3
