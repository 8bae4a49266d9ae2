"""Reading and verifying the audit log (writing happens inside every service)."""

from __future__ import annotations

from collections.abc import Mapping
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
            stmt = stmt.where(AuditEvent.at >= q.since)
        if q.until:
            stmt = stmt.where(AuditEvent.at < q.until)
        if q.cursor:
            if not q.cursor.isdigit():
                raise ValidationError.for_field("cursor", "Invalid cursor")
            stmt = stmt.where(AuditEvent.seq < int(q.cursor))
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
