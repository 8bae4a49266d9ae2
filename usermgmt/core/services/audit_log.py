"""Reading and verifying the audit log (writing happens inside every service)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from usermgmt.core.audit import (
    ChainHead,
    ChainReport,
    Progress,
    parse_head,
    read_head,
    verify_chain,
)
from usermgmt.core.context import Actor
from usermgmt.core.errors import AuditChainBroken, DomainError
from usermgmt.core.models import AuditEvent
from usermgmt.core.schemas import AuditEventOut, AuditMeta, AuditPage, AuditQuery, parse
from usermgmt.core.services.base import ServiceBase

log = logging.getLogger("usermgmt.audit")


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
        """Newest first (``order="oldest"``: oldest first); ``cursor`` is the ``seq``
        after which to continue, in that order."""
        actor.require_admin("audit:read")
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
        oldest = q.order == "oldest"
        if q.cursor:
            after = int(q.cursor)  # AuditQuery's pattern: digits
            stmt = stmt.where(AuditEvent.seq > after if oldest else AuditEvent.seq < after)
        seq = AuditEvent.seq.asc() if oldest else AuditEvent.seq.desc()
        stmt = stmt.order_by(seq).limit(q.limit + 1)
        with self.db.read() as s:
            rows = list(s.execute(stmt).scalars())
        more = len(rows) > q.limit
        rows = rows[: q.limit]
        return AuditPage(
            data=[event_out(e) for e in rows],
            meta=AuditMeta(limit=q.limit, next_cursor=str(rows[-1].seq) if more and rows else None),
        )

    def verify(
        self,
        actor: Actor,
        expect_head: str | ChainHead | None = None,
        *,
        progress: Progress | None = None,
    ) -> ChainReport:
        """Check the chain, and that ``expect_head`` (``SEQ:HASH`` recorded earlier) is in it.

        ``progress(checked, total)`` is called as events are checked (see
        :func:`verify_chain`); an exception it raises stops the check and propagates.
        """
        actor.require_admin("audit:read")
        expect = parse_head(expect_head) if isinstance(expect_head, str) else expect_head
        with self.db.read() as s:
            report = verify_chain(s, expect, progress=progress)
        _log_head(report.head, ok=report.ok)
        return report

    def head(self) -> ChainHead:
        """The chain's current head. Not a secret: it is published so that operators can
        keep it and later detect a truncated or rewound chain (``verify(expect_head=…)``)."""
        with self.db.read() as s:
            head = read_head(s)
        if head is None:
            raise AuditChainBroken("The audit chain head is missing")
        return head

    def current_head(self, actor: Actor) -> ChainHead:
        """:meth:`head`, for an admin reading the audit log (the API's /audit/head)."""
        actor.require_admin("audit:read")
        return self.head()

    def log_head(self) -> ChainHead | None:
        """Log the current head (a server start); a failure to read it is logged, not raised."""
        try:
            head = self.head()
        except DomainError as exc:
            log.warning("audit head unavailable: %s", exc)
            return None
        _log_head(head)
        return head


def _log_head(head: ChainHead | None, **extra: Any) -> None:
    if head is None:
        log.warning("audit head missing", extra=extra)
    else:
        log.info(
            "audit head seq=%d hash=%s", head.seq, head.hash, extra={**extra, "head": str(head)}
        )
