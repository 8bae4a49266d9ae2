"""What admins do with webhooks: subscriptions, their deliveries, retries and replays."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select, update

from usermgmt.core import audit
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import Conflict, NotFound, ValidationError
from usermgmt.core.models import WebhookDelivery, WebhookSubscription
from usermgmt.core.schemas import JsonBool, QueryDateTime, Timestamp, WriteModel, parse
from usermgmt.core.services.base import parse_uuid
from usermgmt.core.webhooks import events, signing, wakeup
from usermgmt.core.webhooks.delivery import WebhookDelivering
from usermgmt.core.webhooks.targets import TargetRefused, check_url, resolve

STATUSES = ("pending", "delivered", "failed")
MAX_LIMIT = 1000


EventName = Literal[events.ALL, *events.EVENT_TYPES]  # type: ignore[valid-type]
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\x00]+$"


class WebhookIn(WriteModel):
    url: str = Field(max_length=2000, pattern=URL_PATTERN)
    events: list[EventName] = Field(min_length=1, max_length=len(events.EVENT_TYPES) + 1)
    description: str = Field("", max_length=500)


class WebhookPatch(WriteModel):
    """The fields to change (null is refused: a subscription always has them)."""

    url: str = Field(None, max_length=2000, pattern=URL_PATTERN)
    events: list[EventName] = Field(None, min_length=1, max_length=len(events.EVENT_TYPES) + 1)
    description: str = Field(None, max_length=500)
    enabled: JsonBool = None


class ReplayIn(WriteModel):
    since: QueryDateTime

    @field_validator("since", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str | datetime):
            raise ValueError("Must be an RFC 3339 date-time, such as 2025-01-31T12:00:00Z")
        return value


class WebhookOut(BaseModel):
    """A subscription as admins see it: never its secret."""

    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    enabled: bool
    failing_since: Timestamp | None
    disabled_reason: str | None
    created_at: Timestamp
    updated_at: Timestamp


class WebhookCreated(BaseModel):
    webhook: WebhookOut
    secret: str = Field(description="The signing secret (whsec_…): shown only here, once.")


class WebhookList(BaseModel):
    data: list[WebhookOut]


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook: uuid.UUID
    webhook_id: str = Field(description="The event's Standard Webhooks id (stable).")
    event_type: str
    user_id: uuid.UUID | None
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: Timestamp | None
    last_status_code: int | None
    last_error: str | None
    latency_ms: int | None
    created_at: Timestamp
    delivered_at: Timestamp | None


class DeliveryMeta(BaseModel):
    limit: int
    total: int
    next_cursor: str | None


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    meta: DeliveryMeta


class ReplayOut(BaseModel):
    replayed: int


def webhook_out(row: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events or []),
        description=row.description,
        enabled=row.enabled,
        failing_since=row.failing_since,
        disabled_reason=row.disabled_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def delivery_out(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        webhook=row.subscription_id,
        webhook_id=row.webhook_id,
        event_type=row.event_type,
        user_id=row.user_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        latency_ms=row.latency_ms,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


def _event_list(values: list[str]) -> list[str]:
    chosen = list(dict.fromkeys(v.strip() for v in values))
    unknown = [v for v in chosen if v != events.ALL and v not in events.EVENT_TYPES]
    if unknown:
        raise ValidationError.for_field(
            "events",
            f"unknown event type {unknown[0]!r}; expected '*' or some of "
            + ", ".join(events.EVENT_TYPES),
        )
    return [events.ALL] if events.ALL in chosen else sorted(chosen)


class WebhookService(WebhookDelivering):
    """Subscriptions (admin) and the delivery of their events."""

    def _checked_url(self, url: str) -> str:
        try:
            url = check_url(url)
            resolve(url, allow_private=self.settings.webhook_allow_private)
        except TargetRefused as exc:
            raise ValidationError.for_field("url", str(exc)) from None
        return url

    @staticmethod
    def _load(s, webhook_id: str, *, for_update: bool = False) -> WebhookSubscription:
        wid = parse_uuid(webhook_id)
        if wid is None:
            raise NotFound("Webhook not found")
        stmt = select(WebhookSubscription).where(WebhookSubscription.id == wid)
        if for_update:
            stmt = stmt.with_for_update()
        row = s.execute(stmt).scalar_one_or_none()
        if row is None:
            raise NotFound("Webhook not found")
        return row

    def create(
        self, actor: Actor, ctx: RequestContext, data: dict[str, Any] | WebhookIn
    ) -> WebhookCreated:
        actor.require_admin("admin")
        spec = parse(WebhookIn, data)
        url = self._checked_url(spec.url)
        chosen = _event_list(spec.events)
        secret = signing.new_secret()
        now = self.clock.now()
        wid = self.ids.new_uuid()
        with self.db.write() as s:
            row = WebhookSubscription(
                id=wid,
                url=url,
                events=chosen,
                description=spec.description.strip(),
                secret_encrypted=signing.encrypt(self.keys.jwt_key(), wid, secret),
                enabled=True,
                created_at=now,
                updated_at=now,
            )
            s.add(row)
            s.flush()
            self.record_event(
                s, actor, ctx, "webhook.created", None,
                {"webhook": str(wid), "url": url, "events": chosen},
            )  # fmt: skip
            return WebhookCreated(webhook=webhook_out(row), secret=secret)

    def list(self, actor: Actor) -> WebhookList:
        actor.require_admin("admin")
        with self.db.read() as s:
            rows = s.execute(
                select(WebhookSubscription).order_by(
                    WebhookSubscription.created_at, WebhookSubscription.id
                )
            ).scalars()
            return WebhookList(data=[webhook_out(r) for r in rows])

    def get(self, actor: Actor, webhook_id: str) -> WebhookOut:
        actor.require_admin("admin")
        with self.db.read() as s:
            return webhook_out(self._load(s, webhook_id))

    def update(
        self,
        actor: Actor,
        ctx: RequestContext,
        webhook_id: str,
        data: dict[str, Any] | WebhookPatch,
    ) -> WebhookOut:
        """Change the URL, events, description; ``enabled`` false pauses it (its pending
        deliveries wait), true resumes it and forgets how long it had been failing."""
        actor.require_admin("admin")
        spec = parse(WebhookPatch, data)
        url = self._checked_url(spec.url) if spec.url is not None else None
        chosen = _event_list(spec.events) if spec.events is not None else None
        with self.db.write() as s:
            row = self._load(s, webhook_id, for_update=True)
            before = webhook_out(row).model_dump(mode="json")
            if url is not None:
                row.url = url
            if chosen is not None:
                row.events = chosen
            if spec.description is not None:
                row.description = spec.description.strip()
            if spec.enabled is not None and spec.enabled != row.enabled:
                row.enabled = spec.enabled
                row.failing_since = None
                row.disabled_reason = None if spec.enabled else "disabled by an admin"
            after = webhook_out(row).model_dump(mode="json")
            changes = audit.diff(before, after)
            if changes:
                row.updated_at = self.clock.now()
                changes["webhook"] = str(row.id)
                self.record_event(s, actor, ctx, "webhook.updated", None, changes)
                if row.enabled:
                    wakeup.after_commit(s)
            return webhook_out(row)

    def delete(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> None:
        actor.require_admin("admin")
        with self.db.write() as s:
            row = self._load(s, webhook_id, for_update=True)
            s.execute(
                WebhookDelivery.__table__.delete().where(WebhookDelivery.subscription_id == row.id)
            )
            self.record_event(
                s, actor, ctx, "webhook.deleted", None, {"webhook": str(row.id), "url": row.url}
            )
            s.delete(row)

    def test(self, actor: Actor, ctx: RequestContext, webhook_id: str) -> DeliveryOut:
        """Queue a ``webhook.test`` event for this subscription alone."""
        actor.require_admin("admin")
        now = self.clock.now()
        with self.db.write() as s:
            row = self._load(s, webhook_id)
            if not row.enabled:
                raise Conflict("Webhook is disabled: enable it first")
            delivery = WebhookDelivery(
                id=self.ids.new_uuid(),
                subscription_id=row.id,
                webhook_id=events.new_webhook_id(self.ids),
                event_type=events.TEST_TYPE,
                user_id=None,
                payload={
                    "type": events.TEST_TYPE,
                    "timestamp": events.timestamp(now),
                    "data": {"webhook": str(row.id), "requested_by": actor.label},
                },
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            s.add(delivery)
            s.flush()
            wakeup.after_commit(s)
            return delivery_out(delivery)

    def deliveries(
        self,
        actor: Actor,
        webhook_id: str,
        *,
        status: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """Newest first; ``cursor`` is a previous page's ``meta.next_cursor``."""
        actor.require_admin("admin")
        if status is not None and status not in STATUSES:
            raise ValidationError.for_field("status", f"must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= MAX_LIMIT:
            raise ValidationError.for_field("limit", f"must be between 1 and {MAX_LIMIT}")
        before = None
        if cursor is not None:
            if not cursor.isdigit() or len(cursor) > 18:
                raise ValidationError.for_field("cursor", "not a meta.next_cursor of this list")
            before = int(cursor)
        with self.db.read() as s:
            sub = self._load(s, webhook_id)
            where = [WebhookDelivery.subscription_id == sub.id]
            if status is not None:
                where.append(WebhookDelivery.status == status)
            total = s.execute(
                select(func.count()).select_from(WebhookDelivery).where(*where)
            ).scalar_one()
            if before is not None:
                where.append(WebhookDelivery.seq < before)
            rows = list(
                s.execute(
                    select(WebhookDelivery)
                    .where(*where)
                    .order_by(WebhookDelivery.seq.desc())
                    .limit(limit)
                ).scalars()
            )
            next_cursor = str(rows[-1].seq) if len(rows) == limit else None
            return DeliveryPage(
                data=[delivery_out(r) for r in rows],
                meta=DeliveryMeta(limit=limit, total=total, next_cursor=next_cursor),
            )

    def retry(self, actor: Actor, ctx: RequestContext, delivery_id: str) -> DeliveryOut:
        """Send one delivery again with fresh attempts (a dead letter, a pending one waiting
        for its backoff, or a delivered one the app asks for again)."""
        actor.require_admin("admin")
        did = parse_uuid(delivery_id)
        if did is None:
            raise NotFound("Webhook delivery not found")
        with self.db.write() as s:
            row = s.execute(
                select(WebhookDelivery).where(WebhookDelivery.id == did).with_for_update()
            ).scalar_one_or_none()
            if row is None:
                raise NotFound("Webhook delivery not found")
            before = {"status": row.status, "attempts": row.attempts}
            row.status = "pending"
            row.attempts = 0
            row.next_attempt_at = self.clock.now()
            row.lease_until = None
            self.record_event(
                s,
                actor,
                ctx,
                "webhook.retried",
                row.user_id,
                {
                    "delivery": str(row.id),
                    "webhook_id": row.webhook_id,
                    "status": {"before": before["status"], "after": "pending"},
                    "attempts": {"before": before["attempts"], "after": 0},
                },
            )
            wakeup.after_commit(s)
            return delivery_out(row)

    def replay(
        self, actor: Actor, ctx: RequestContext, webhook_id: str, data: dict[str, Any] | ReplayIn
    ) -> ReplayOut:
        """Send again, in their order and with their ids, the subscription's events since
        ``since`` that are not pending (delivered or dead-lettered)."""
        actor.require_admin("admin")
        spec = parse(ReplayIn, data)
        when = spec.since
        with self.db.write() as s:
            sub = self._load(s, webhook_id, for_update=True)
            if not sub.enabled:
                raise Conflict("Webhook is disabled: enable it first")
            result = s.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.subscription_id == sub.id,
                    WebhookDelivery.created_at >= when,
                    WebhookDelivery.status != "pending",
                )
                .values(
                    status="pending",
                    attempts=0,
                    next_attempt_at=self.clock.now(),
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            count = result.rowcount or 0
            self.record_event(
                s, actor, ctx, "webhook.replayed", None,
                {"webhook": str(sub.id), "since": when, "count": count},
            )  # fmt: skip
            if count:
                wakeup.after_commit(s)
            return ReplayOut(replayed=count)
