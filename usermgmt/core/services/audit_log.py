"""Reading and verifying the audit log (writing happens inside every service)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from usermgmt.core.audit import ChainReport, verify_chain
from usermgmt.core.context import Actor
from usermgmt.core.errors import ValidationError
from usermgmt.core.models import AuditEvent
from usermgmt.core.schemas import AuditEventOut, AuditMeta, AuditPage, AuditQuery, parse
from usermgmt.core.services.base import ServiceBase


def event_out(e: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        id=e.id,
        seq=e.seq,
        at=e.at,
        action=e.action,
        actor_id=e.actor_id,
        actor_label=e.actor_label,
        target_id=e.target_id,
        ip=e.ip,
        request_id=e.request_id,
        changes=e.changes or {},
        prev_hash=e.prev_hash,
        hash=e.hash,
    )


# A cursor is the seq to continue below: ASCII digits (str.isdigit would take
# '٣' and '²') within the BIGINT column's range.
_SEQ_CURSOR = re.compile(r"[0-9]{1,19}")
MAX_SEQ = 2**63 - 1


def _seq_cursor(cursor: str) -> int:
    if _SEQ_CURSOR.fullmatch(cursor) is None or int(cursor) > MAX_SEQ:
        raise ValidationError.for_field("cursor", "Invalid cursor (use meta.next_cursor)")
    return int(cursor)


def _utc(value: datetime, field: str) -> datetime:
    """``value`` in UTC (without a zone it is UTC); a time that leaves the calendar
    there (9999-12-31T23:00-05:00) is a ValidationError, not a database error."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError.for_field(field, "Time is out of range in UTC") from None


class AuditService(ServiceBase):
    def query(self, actor: Actor, query: AuditQuery | Mapping[str, Any] | None = None) -> AuditPage:
        """Newest first; ``cursor`` is the ``seq`` below which to continue."""
        actor.require_admin()
        q = parse(AuditQuery, query)
        stmt = select(AuditEvent)
        if q.actor_id:
            stmt = stmt.where(AuditEvent.actor_id == q.actor_id)
        if q.actor_label:
            stmt = stmt.where(AuditEvent.actor_label == q.actor_label)
        if q.target_id:
            stmt = stmt.where(AuditEvent.target_id == q.target_id)
        if q.action:
            if q.action.endswith("*"):
                stmt = stmt.where(AuditEvent.action.startswith(q.action[:-1]))
            else:
                stmt = stmt.where(AuditEvent.action == q.action)
        if q.since:
            stmt = stmt.where(AuditEvent.at >= _utc(q.since, "since"))
        if q.until:
            stmt = stmt.where(AuditEvent.at < _utc(q.until, "until"))
        if q.cursor:
            stmt = stmt.where(AuditEvent.seq < _seq_cursor(q.cursor))
        stmt = stmt.order_by(AuditEvent.seq.desc()).limit(q.limit + 1)
        with self.db.read() as s:
            rows = list(s.execute(stmt).scalars())
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return AuditPage(
            data=[event_out(e) for e in rows],
            meta=AuditMeta(limit=q.limit, next_cursor=str(rows[-1].seq) if more and rows else None),
        )

    def verify(self, actor: Actor) -> ChainReport:
        actor.require_admin()
        with self.db.read() as s:
            return verify_chain(s)
