"""Delivering the outbox: claim due messages with a lease, send outside any transaction,
then record the outcome.

At-least-once, never lost:

1. *Claim* (one short write transaction): due rows (``status = 'pending'``,
   ``next_attempt_at <= now``, no live lease) get ``lease_until = now + lease``.
   PostgreSQL uses ``FOR UPDATE SKIP LOCKED``, so two deliverers take different
   rows; SQLite's ``BEGIN IMMEDIATE`` serialises the claims.
2. *Send* with no transaction open, using the Message-ID stored at enqueue time.
3. *Record*: accepted → ``sent`` (and the link and token are removed from the
   stored context: the raw token does not stay at rest after delivery); refused
   or unreachable → ``attempts + 1`` and a retry after an exponential, jittered,
   capped backoff, or ``failed`` (the dead letter) after ``mail_max_attempts``.

A deliverer that dies between 2 and 3 leaves its lease to expire; the message is
then sent again with the same Message-ID (the "at least once").
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import func, or_, select

from usermgmt.core.background import PollingLoop
from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.config import Settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.errors import (
    ConfigurationError,
    Conflict,
    NotFound,
    ServiceUnavailable,
    ValidationError,
)
from usermgmt.core.ids import RANDOM_IDS, IdSource
from usermgmt.core.mail.render import Renderer, TemplateError, build_message, variables_for
from usermgmt.core.mail.transports import DeliveryError, transport_from_settings
from usermgmt.core.models import MailMessage, User
from usermgmt.core.schemas import Timestamp
from usermgmt.core.services import outbox
from usermgmt.core.services.base import KeyRing, ServiceBase, parse_uuid

log = logging.getLogger("usermgmt.mail")

STATUSES = ("pending", "sent", "failed")
# Context entries that must not stay in the database once the mail is delivered.
SECRET_CONTEXT_KEYS = frozenset({"token", "link"})
BATCH_SIZE = 20
LEASE = timedelta(minutes=10)
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_CAP = timedelta(hours=6)
MAX_ERROR_CHARS = 1000


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0  # moved to the dead letter state in this run
    retried: int = 0  # failed attempts that will be tried again later
    errors: list[str] = field(default_factory=list)

    @property
    def processed(self) -> int:
        return self.sent + self.failed + self.retried


class MailOut(BaseModel):
    """One outbox row as operators see it: never the context (it may hold a token)."""

    id: uuid.UUID
    template: str
    to_addr: str
    user_id: uuid.UUID | None
    message_id: str
    status: Literal["pending", "sent", "failed"]
    attempts: int
    next_attempt_at: Timestamp | None
    last_error: str | None
    created_at: Timestamp
    sent_at: Timestamp | None


class MailMeta(BaseModel):
    limit: int
    # Pass it back as ``cursor`` for the next (older) messages; None: no more.
    next_cursor: str | None = None


class MailList(BaseModel):
    data: list[MailOut]
    meta: MailMeta


def _mail_cursor(row: MailMessage) -> str:
    raw = json.dumps([row.created_at.isoformat(), str(row.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_mail_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, mid = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromisoformat(at), uuid.UUID(mid)
    except (ValueError, TypeError):
        raise ValidationError.for_field(
            "cursor", "not a meta.next_cursor of a mail listing"
        ) from None


@dataclass(frozen=True)
class _Claimed:
    id: uuid.UUID
    template: str
    to_addr: str
    context: dict[str, Any]
    message_id: str
    created_at: datetime
    name: str | None


def backoff(attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP):
    """Delay after the ``attempts``-th failure: base·2^(n-1), ±25 % jitter, capped."""
    exponent = min(max(attempts - 1, 0), 30)
    seconds = base.total_seconds() * (2**exponent) * random.uniform(0.75, 1.25)
    return timedelta(seconds=min(seconds, cap.total_seconds()))


def _log_fields(item: _Claimed, *, attempts: int | None, worker: str) -> dict[str, Any]:
    """Structured fields for JSON logs (never the context: it may hold a token)."""
    fields = {
        "mail_id": str(item.id),
        "mail_template": item.template,
        "mail_to": item.to_addr,
        "worker": worker,
    }
    if attempts is not None:
        fields["attempts"] = attempts
    return fields


def _mail_out(row: MailMessage) -> MailOut:
    return MailOut(
        id=row.id,
        template=row.template,
        to_addr=row.to_addr,
        user_id=row.user_id,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


class MailService(ServiceBase):
    """Delivers the outbox and lets operators inspect and retry it."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: KeyRing,
        *,
        transport=None,
        renderer: Renderer | None = None,
        clock: Clock = SYSTEM_CLOCK,
        ids: IdSource = RANDOM_IDS,
        lease: timedelta = LEASE,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__(db, settings, keys, clock=clock, ids=ids)
        self.renderer = renderer or Renderer(settings.mail_templates_dir)
        if settings.mail_templates_dir is not None and renderer is None:
            try:
                self.renderer.check(settings)
            except TemplateError as exc:
                raise ConfigurationError(f"USERMGMT_MAIL_TEMPLATES_DIR: {exc}") from None
        self.transport = transport or transport_from_settings(settings)
        self.lease = lease
        self.batch_size = batch_size

    def describe_transport(self) -> str:
        """Where mail goes, for a banner or a log line (an SMTP password masked)."""
        return self.transport.describe()

    # ---- delivery ------------------------------------------------------------

    def deliver_pending(
        self, *, limit: int | None = None, worker_id: str | None = None
    ) -> DeliveryReport:
        """Send what is due, in batches, until nothing is due or ``limit`` messages were tried.

        A run stops early when the transport is down (no connection, login refused):
        the messages of that batch are charged one failed attempt, the rest wait
        for the next run.
        """
        if limit is not None and limit < 1:
            raise ValidationError.for_field("limit", "must be at least 1")
        worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        report = DeliveryReport()
        while limit is None or report.processed < limit:
            size = (
                self.batch_size if limit is None else min(self.batch_size, limit - report.processed)
            )
            batch = self._claim(size)
            if not batch:
                break
            if self._send_batch(batch, report, worker):
                break
        return report

    def _claim(self, size: int) -> list[_Claimed]:
        now = self.clock.now()
        with self.db.write() as s:
            stmt = (
                select(MailMessage)
                .where(
                    MailMessage.status == "pending",
                    MailMessage.next_attempt_at <= now,
                    or_(MailMessage.lease_until.is_(None), MailMessage.lease_until < now),
                )
                .order_by(MailMessage.next_attempt_at, MailMessage.created_at)
                .limit(size)
            )
            if self.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            rows = list(s.execute(stmt).scalars())
            if not rows:
                return []
            for row in rows:
                row.lease_until = now + self.lease
            user_ids = {row.user_id for row in rows if row.user_id is not None}
            names: dict[uuid.UUID, str | None] = {}
            if user_ids:
                names = dict(
                    s.execute(select(User.id, User.first_name).where(User.id.in_(user_ids))).all()
                )
            return [
                _Claimed(
                    id=row.id,
                    template=row.template,
                    to_addr=row.to_addr,
                    context=dict(row.context or {}),
                    message_id=row.message_id,
                    created_at=row.created_at,
                    name=names.get(row.user_id) if row.user_id else None,
                )
                for row in rows
            ]

    def build(self, item: _Claimed):
        values = variables_for(
            self.settings,
            item.template,
            to_addr=item.to_addr,
            context=item.context,
            name=item.name,
            created_at=item.created_at,
        )
        rendered = self.renderer.render(item.template, values)
        return build_message(
            rendered,
            mail_from=self.settings.mail_from,
            to_addr=item.to_addr,
            message_id=item.message_id,
            date=item.created_at,
        )

    def _send_batch(self, batch: list[_Claimed], report: DeliveryReport, worker: str) -> bool:
        """Send one claimed batch; True when the transport is down (stop this run)."""
        with self.transport.session() as conn:
            for index, item in enumerate(batch):
                try:
                    message = self.build(item)
                    where = conn.send(message)
                except TemplateError as exc:
                    self._record_failure(item, f"template: {exc}", report, worker)
                    continue
                except DeliveryError as exc:
                    self._record_failure(item, exc.message, report, worker)
                    if exc.server_down:
                        for rest in batch[index + 1 :]:
                            self._record_failure(rest, exc.message, report, worker)
                        return True
                    continue
                except Exception as exc:  # logged, and charged so it cannot loop
                    log.exception("mail %s: unexpected error while sending", item.id)
                    self._record_failure(
                        item, f"internal error: {type(exc).__name__}", report, worker
                    )
                    continue
                self._record_sent(item, where, report, worker)
        return False

    def _record_sent(self, item: _Claimed, where: str, report: DeliveryReport, worker: str) -> None:
        now = self.clock.now()
        with self.db.write() as s:
            row = s.execute(
                select(MailMessage).where(MailMessage.id == item.id).with_for_update()
            ).scalar_one_or_none()
            if row is None or row.status != "pending":
                return  # already recorded by a deliverer whose lease we outlived
            row.status = "sent"
            row.sent_at = now
            row.attempts += 1
            row.lease_until = None
            row.last_error = None
            row.context = {k: v for k, v in item.context.items() if k not in SECRET_CONTEXT_KEYS}
        report.sent += 1
        log.info(
            "mail %s sent: %s to %s via %s (%s) [%s]",
            item.id,
            item.template,
            item.to_addr,
            self.transport.name,
            where,
            worker,
            extra=_log_fields(item, attempts=None, worker=worker),
        )

    def _record_failure(
        self, item: _Claimed, error: str, report: DeliveryReport, worker: str
    ) -> None:
        now = self.clock.now()
        error = error[:MAX_ERROR_CHARS]
        with self.db.write() as s:
            row = s.execute(
                select(MailMessage).where(MailMessage.id == item.id).with_for_update()
            ).scalar_one_or_none()
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_error = error
            row.lease_until = None
            dead = row.attempts >= self.settings.mail_max_attempts
            if dead:
                row.status = "failed"
            else:
                row.next_attempt_at = now + backoff(row.attempts)
            attempts, retry_at = row.attempts, row.next_attempt_at
        report.errors.append(f"{item.id}: {error}")
        if dead:
            report.failed += 1
            log.error(
                "mail %s (%s to %s) failed for good after %d attempts: %s [%s]; "
                "`usermgmt mail retry %s` sends it again",
                item.id,
                item.template,
                item.to_addr,
                attempts,
                error,
                worker,
                item.id,
                extra=_log_fields(item, attempts=attempts, worker=worker),
            )
        else:
            report.retried += 1
            log.warning(
                "mail %s (%s to %s) attempt %d failed: %s; next try at %s [%s]",
                item.id,
                item.template,
                item.to_addr,
                attempts,
                error,
                retry_at.isoformat(timespec="seconds"),
                worker,
                extra=_log_fields(item, attempts=attempts, worker=worker),
            )

    # ---- operators -------------------------------------------------------------

    def list(
        self,
        actor: Actor,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> MailList:
        """Newest first, optionally only one status; ``cursor`` (a ``meta.next_cursor``)
        continues after the last message of the previous page."""
        actor.require_admin("maintenance")
        if status is not None and status not in STATUSES:
            raise ValidationError.for_field("status", f"must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= 1000:
            raise ValidationError.for_field("limit", "must be between 1 and 1000")
        stmt = select(MailMessage).order_by(MailMessage.created_at.desc(), MailMessage.id)
        if status is not None:
            stmt = stmt.where(MailMessage.status == status)
        if cursor is not None:
            at, mid = _parse_mail_cursor(cursor)
            stmt = stmt.where(
                (MailMessage.created_at < at)
                | ((MailMessage.created_at == at) & (MailMessage.id > mid))
            )
        with self.db.read() as s:
            rows = s.execute(stmt.limit(limit + 1)).scalars().all()
            more = len(rows) > limit
            rows = rows[:limit]
            return MailList(
                data=[_mail_out(row) for row in rows],
                meta=MailMeta(limit=limit, next_cursor=_mail_cursor(rows[-1]) if more else None),
            )

    def deliver(
        self, actor: Actor, ctx: RequestContext, *, limit: int | None = None
    ) -> DeliveryReport:
        """:meth:`deliver_pending` on an admin's request; a run that sent, retried or
        dead-lettered anything is audited (``mail.delivered``, with its counts)."""
        actor.require_admin("maintenance")
        report = self.deliver_pending(limit=limit)
        if report.processed:
            with self.db.write() as s:
                self.record_event(
                    s,
                    actor,
                    ctx,
                    "mail.delivered",
                    None,
                    {"sent": report.sent, "retried": report.retried, "failed": report.failed},
                )
        return report

    def counts(self) -> dict[str, int]:
        """How many messages the outbox holds in each status (for monitoring: dead
        letters are ``failed``). Raises a ServiceUnavailable while the database is down."""
        stmt = select(MailMessage.status, func.count()).group_by(MailMessage.status)
        with self.db.read() as s:
            found = {status: count for status, count in s.execute(stmt)}
        return {status: found.get(status, 0) for status in STATUSES}

    def retry(self, actor: Actor, ctx: RequestContext, message_id: str) -> MailOut:
        """A dead letter goes back to pending with a fresh set of attempts; a pending
        message waiting for its backoff becomes due now. A sent message is a conflict."""
        actor.require_admin("maintenance")
        mid = parse_uuid(message_id)
        if mid is None:
            raise NotFound("Mail message not found")
        now = self.clock.now()
        with self.db.write() as s:
            row = s.execute(
                select(MailMessage).where(MailMessage.id == mid).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("Mail message not found")
            if row.status == "sent":
                raise Conflict("Mail message was already sent")
            before = {"status": row.status, "attempts": row.attempts}
            if row.status == "failed":
                row.status = "pending"
                row.attempts = 0
            row.next_attempt_at = now
            row.lease_until = None
            self.record_event(
                s,
                actor,
                ctx,
                "mail.retried",
                row.user_id,
                {
                    "mail_id": str(row.id),
                    "template": row.template,
                    "status": {"before": before["status"], "after": row.status},
                    "attempts": {"before": before["attempts"], "after": row.attempts},
                },
            )
            return _mail_out(row)


class BackgroundDeliverer(PollingLoop):
    """Runs ``deliver_pending`` in a daemon thread every ``interval`` seconds
    (``usermgmt.core.background``): started by ``usermgmt serve``; every commit in
    this process that enqueued mail wakes it."""

    name = "mail"
    log = log

    def __init__(self, services, *, interval: float = 2.0) -> None:
        super().__init__(
            interval=interval,
            signal=outbox.enqueued,
        )
        self._mail: MailService = services.mail
        self.runs = 0

    def started_line(self) -> str:
        return f"mail deliverer started ({self._mail.describe_transport()})"

    def run_once(self) -> bool:
        """One batch; True when it was full. Errors are logged, never raised: the
        thread must outlive a database or mail server outage."""
        self.runs += 1
        limit = self._mail.batch_size
        try:
            report = self._mail.deliver_pending(limit=limit, worker_id=self._worker)
        except ServiceUnavailable as exc:
            log.warning("mail delivery skipped: %s", exc.message)
            return False
        except Exception:  # a background thread logs and carries on
            log.exception("mail delivery run failed")
            return False
        return report.processed >= limit and not report.errors
