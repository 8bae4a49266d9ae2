"""Delivering webhooks: claim due deliveries with a lease, POST them outside any
transaction, then record the outcomes (the same scheme as the mail outbox).

1. *Claim* (one short write transaction): pending, due, unleased deliveries of
   enabled subscriptions whose user has no earlier pending delivery to the same
   subscription (per-subscription order of a user's events) get
   ``lease_until = now + lease``. PostgreSQL takes them ``FOR UPDATE SKIP
   LOCKED``, so deliverers on several servers take different rows; SQLite's
   ``BEGIN IMMEDIATE`` serialises the claims.
2. *Send* with no transaction open: a few at a time, each with its stable
   ``webhook-id``, a fresh timestamp and signature, a timeout, no redirects, and
   at most ``MAX_RESPONSE_BYTES`` of the answer read.
3. *Record* the batch in one transaction: 2xx → ``delivered``; anything else →
   a retry after an exponential, jittered backoff, or ``failed`` (the dead
   letter) after ``webhook_max_attempts``. A subscription failing for
   ``webhook_disable_after`` seconds is disabled and the admins get a mail.

A deliverer killed between 1 and 3 leaves its lease to expire; the event is then
sent again with the same ``webhook-id`` (at least once).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import aliased

from usermgmt import __version__
from usermgmt.core.background import PollingLoop
from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.config import Settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.errors import ServiceUnavailable, ValidationError
from usermgmt.core.ids import RANDOM_IDS, IdSource
from usermgmt.core.models import User, UserRole, WebhookDelivery, WebhookSubscription
from usermgmt.core.services import outbox
from usermgmt.core.services.base import KeyRing, ServiceBase
from usermgmt.core.webhooks import signing, wakeup
from usermgmt.core.webhooks.targets import TargetRefused, resolve

log = logging.getLogger("usermgmt.webhooks")

BATCH_SIZE = 50
SENDERS = 8  # requests in flight at once per deliverer
MAX_RESPONSE_BYTES = 4096
MAX_ERROR_CHARS = 300
BACKOFF_CAP = timedelta(hours=6)
SYSTEM = Actor.system("system:webhooks")


@dataclass
class DeliveryReport:
    delivered: int = 0
    retried: int = 0  # failed attempts that will be tried again
    failed: int = 0  # moved to the dead letter in this run
    disabled: int = 0  # subscriptions disabled in this run

    @property
    def processed(self) -> int:
        return self.delivered + self.retried + self.failed


@dataclass(frozen=True)
class _Claimed:
    seq: int
    webhook_id: str
    payload: dict[str, Any]
    subscription_id: uuid.UUID
    url: str
    secret_encrypted: str


@dataclass
class _Outcome:
    item: _Claimed
    ok: bool
    status_code: int | None = None
    error: str | None = None
    latency_ms: int | None = None


@dataclass
class _Secrets:
    """Decrypted secrets of one run, per subscription."""

    key: bytes
    cache: dict[uuid.UUID, str] = field(default_factory=dict)

    def get(self, item: _Claimed) -> str:
        secret = self.cache.get(item.subscription_id)
        if secret is None:
            secret = signing.decrypt(self.key, item.subscription_id, item.secret_encrypted)
            self.cache[item.subscription_id] = secret
        return secret


class _Clients:
    """One HTTP client per target host for a run. Requests go to a checked address, not
    the name (see targets), so connections are pooled per host: a connection made and
    verified for one name is never reused for another name on the same address."""

    def __init__(self, timeout: float, transport) -> None:
        self._timeout = timeout
        self._transport = transport
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def for_host(self, host: str):
        import httpx

        with self._lock:
            client = self._clients.get(host)
            if client is None:
                client = self._clients[host] = httpx.Client(
                    follow_redirects=False,
                    timeout=self._timeout,
                    transport=self._transport,
                    limits=httpx.Limits(max_connections=SENDERS, max_keepalive_connections=SENDERS),
                    trust_env=False,
                )
            return client

    def __enter__(self) -> _Clients:
        return self

    def __exit__(self, *exc) -> None:
        for client in self._clients.values():
            client.close()


def backoff(attempts: int, base: float) -> timedelta:
    """Delay after the ``attempts``-th failure: base·2^(n-1), ±25 % jitter, capped."""
    exponent = min(max(attempts - 1, 0), 30)
    seconds = base * (2**exponent) * random.uniform(0.75, 1.25)
    return timedelta(seconds=min(seconds, BACKOFF_CAP.total_seconds()))


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)[:MAX_ERROR_CHARS]


class WebhookDelivering(ServiceBase):
    """The delivering half of the webhooks service."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        keys: KeyRing,
        *,
        clock: Clock = SYSTEM_CLOCK,
        ids: IdSource = RANDOM_IDS,
        batch_size: int = BATCH_SIZE,
        transport=None,
    ) -> None:
        super().__init__(db, settings, keys, clock=clock, ids=ids)
        self.batch_size = batch_size
        self.transport = transport  # an httpx transport (tests and the benchmark)
        rounds = math.ceil(batch_size / SENDERS)
        self.lease = timedelta(seconds=max(300.0, 2 * settings.webhook_timeout * rounds))

    # ---- delivery ----------------------------------------------------------------

    def deliver_pending(
        self, *, limit: int | None = None, worker_id: str | None = None
    ) -> DeliveryReport:
        """Send what is due, batch after batch, until nothing is due or ``limit`` were tried."""
        if limit is not None and limit < 1:
            raise ValidationError.for_field("limit", "must be at least 1")
        worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        report = DeliveryReport()
        secrets = _Secrets(self.keys.jwt_key())
        clients = _Clients(self.settings.webhook_timeout, self.transport)
        with clients, ThreadPoolExecutor(SENDERS, thread_name_prefix="usermgmt-webhook") as pool:
            while limit is None or report.processed < limit:
                size = self.batch_size
                if limit is not None:
                    size = min(size, limit - report.processed)
                batch = self._claim(size)
                if not batch:
                    break
                outcomes = list(pool.map(lambda item: self._send(clients, secrets, item), batch))
                self._record(outcomes, report, worker)
        return report

    def _claim(self, size: int) -> list[_Claimed]:
        now = self.clock.now()
        d, sub = WebhookDelivery, WebhookSubscription
        earlier = aliased(WebhookDelivery)
        blocked = (
            select(earlier.seq)
            .where(
                earlier.subscription_id == d.subscription_id,
                earlier.user_id == d.user_id,
                earlier.status == "pending",
                earlier.seq < d.seq,
            )
            .exists()
        )
        stmt = (
            select(d.seq, d.webhook_id, d.payload, d.subscription_id, sub.url, sub.secret_encrypted)
            .join(sub, sub.id == d.subscription_id)
            .where(
                d.status == "pending",
                d.next_attempt_at <= now,
                or_(d.lease_until.is_(None), d.lease_until < now),
                sub.enabled.is_(True),
                ~blocked,
            )
            .order_by(d.seq)
            .limit(size)
        )
        if self.db.is_postgres:
            stmt = stmt.with_for_update(of=d, skip_locked=True)
        with self.db.write() as s:
            claimed = [_Claimed(*row) for row in s.execute(stmt).all()]
            if claimed:
                s.execute(
                    update(d)
                    .where(d.seq.in_([c.seq for c in claimed]))
                    .values(lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
            return claimed

    def _send(self, clients: _Clients, secrets: _Secrets, item: _Claimed) -> _Outcome:
        import httpx

        try:
            target = resolve(item.url, allow_private=self.settings.webhook_allow_private)
            secret = secrets.get(item)
        except TargetRefused as exc:
            return _Outcome(item, False, error=f"refused: {exc}")
        except signing.SecretUnreadable as exc:
            return _Outcome(item, False, error=f"secret unreadable: {exc}")
        body = body_of(item.payload)
        stamp = int(self.clock.now().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": f"usermgmt-webhooks/{__version__}",
            "host": urlsplit(target.url).netloc,
            "webhook-id": item.webhook_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": signing.sign(secret, item.webhook_id, stamp, body),
        }
        https = target.url[:6].lower() == "https:"
        extensions = {"sni_hostname": target.host} if https else {}
        started = time.perf_counter()
        try:
            with clients.for_host(target.host).stream(
                "POST", target.pinned_url, content=body, headers=headers, extensions=extensions
            ) as response:
                answer = b""
                for chunk in response.iter_bytes():
                    answer += chunk
                    if len(answer) >= MAX_RESPONSE_BYTES:
                        break
                    if time.perf_counter() - started > self.settings.webhook_timeout:
                        raise httpx.ReadTimeout("the answer took too long")
                code = response.status_code
        except httpx.TimeoutException:
            return _Outcome(item, False, error="timed out", latency_ms=self._ms(started))
        except httpx.HTTPError as exc:
            return _Outcome(
                item, False, error=f"{type(exc).__name__}: {exc}", latency_ms=self._ms(started)
            )
        latency = self._ms(started)
        if 200 <= code < 300:
            return _Outcome(item, True, status_code=code, latency_ms=latency)
        text = answer[:MAX_RESPONSE_BYTES].decode("utf-8", "replace").strip()
        why = "redirect not followed" if 300 <= code < 400 else f"HTTP {code}"
        return _Outcome(
            item,
            False,
            status_code=code,
            error=f"{why}: {text}" if text else why,
            latency_ms=latency,
        )

    @staticmethod
    def _ms(started: float) -> int:
        return round((time.perf_counter() - started) * 1000)

    def _record(self, outcomes: list[_Outcome], report: DeliveryReport, worker: str) -> None:
        now = self.clock.now()
        s_ = self.settings
        with self.db.write() as s:
            sub_ids = sorted({o.item.subscription_id for o in outcomes})
            subs = {
                sub.id: sub
                for sub in s.execute(
                    select(WebhookSubscription)
                    .where(WebhookSubscription.id.in_(sub_ids))
                    .order_by(WebhookSubscription.id)
                    .with_for_update()
                ).scalars()
            }
            rows = {
                row.seq: row
                for row in s.execute(
                    select(WebhookDelivery)
                    .where(WebhookDelivery.seq.in_([o.item.seq for o in outcomes]))
                    .order_by(WebhookDelivery.seq)
                    .with_for_update()
                ).scalars()
            }
            failing: dict[uuid.UUID, str] = {}
            for outcome in outcomes:
                row = rows.get(outcome.item.seq)
                if row is None or row.status != "pending":
                    continue  # recorded by a deliverer whose lease we outlived, or deleted
                row.attempts += 1
                row.lease_until = None
                row.last_status_code = outcome.status_code
                row.latency_ms = outcome.latency_ms
                sub = subs.get(row.subscription_id)
                if outcome.ok:
                    row.status = "delivered"
                    row.delivered_at = now
                    row.last_error = None
                    report.delivered += 1
                    if sub is not None:
                        sub.failing_since = None
                    failing.pop(row.subscription_id, None)
                    continue
                row.last_error = _printable(outcome.error or "failed")
                if row.attempts >= s_.webhook_max_attempts:
                    row.status = "failed"
                    report.failed += 1
                    log.warning(
                        "webhook %s to %s dead-lettered after %d attempts: %s [%s]",
                        row.webhook_id,
                        outcome.item.url,
                        row.attempts,
                        row.last_error,
                        worker,
                    )
                else:
                    row.next_attempt_at = now + backoff(row.attempts, s_.webhook_backoff_base)
                    report.retried += 1
                failing[row.subscription_id] = row.last_error
            for sub_id, error in failing.items():
                sub = subs.get(sub_id)
                if sub is None:
                    continue
                if sub.failing_since is None:
                    sub.failing_since = now
                elapsed = (now - sub.failing_since).total_seconds()
                if sub.enabled and elapsed >= s_.webhook_disable_after:
                    self._disable(s, sub, error, now)
                    report.disabled += 1

    def _disable(self, s, sub: WebhookSubscription, error: str, now: datetime) -> None:
        hours = self.settings.webhook_disable_after / 3600
        reason = f"failing for {hours:g} hours; last error: {error}"[:200]
        sub.enabled = False
        sub.disabled_reason = reason
        sub.updated_at = now
        self.record_event(
            s,
            SYSTEM,
            RequestContext(),
            "webhook.disabled",
            None,
            {"webhook": str(sub.id), "url": sub.url, "reason": reason},
        )
        admins = s.execute(
            select(User.id, User.email)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                UserRole.role_name == "admin", User.is_active.is_(True), User.deleted_at.is_(None)
            )
        ).all()
        for admin_id, email in admins:
            outbox.enqueue(
                s,
                self.settings,
                "webhook_disabled",
                email,
                user_id=admin_id,
                context={"webhook_url": sub.url, "webhook_reason": reason},
                now=now,
                ids=self.ids,
            )
        log.warning("webhook subscription %s (%s) disabled: %s", sub.id, sub.url, reason)


class BackgroundDeliverer(PollingLoop):
    """Runs ``deliver_pending`` in a daemon thread (``usermgmt.core.background``),
    next to the mail deliverer in ``usermgmt serve``; a commit in this process that
    queued deliveries wakes it."""

    name = "webhook"
    worker_suffix = "webhooks"
    log = log

    def __init__(self, services, *, interval: float = 2.0) -> None:
        super().__init__(
            interval=interval,
            signal=wakeup.queued,
        )
        self._webhooks = services.webhooks

    def run_once(self) -> bool:
        """One batch; True when it was full. Errors are logged, never raised."""
        limit = self._webhooks.batch_size
        try:
            report = self._webhooks.deliver_pending(limit=limit, worker_id=self._worker)
        except ServiceUnavailable as exc:
            log.warning("webhook delivery skipped: %s", exc.message)
            return False
        except Exception:  # a background thread logs and carries on
            log.exception("webhook delivery run failed")
            return False
        return report.processed >= limit
