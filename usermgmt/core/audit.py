"""The hash-chained audit log.

Each event stores the hash of the previous one. Writers lock the single
``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write
transactions are already serialised by ``BEGIN IMMEDIATE``), so the chain
stays linear under concurrent writers. Events are written by the services in
the same transaction as the change they describe. On PostgreSQL a trigger
refuses UPDATE and DELETE on the table (see the initial migration).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.models import AuditEvent, AuditHead, utcnow

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {"password", "password_hash", "new_password", "current_password", "token", "refresh_token"}
)


def redact(changes: dict[str, Any]) -> dict[str, Any]:
    """JSON-safe copy of ``changes`` with every secret-looking key redacted."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: (REDACTED if k in SECRET_KEYS else clean(v)) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, datetime):
            return value.isoformat().replace("+00:00", "Z")
        if isinstance(value, uuid.UUID):
            return str(value)
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        return str(value)

    return clean(changes)


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{field: {"before": …, "after": …}}`` for the fields that changed."""
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in after
        if before.get(key) != after.get(key)
    }


def compute_hash(event: AuditEvent) -> str:
    payload = {
        "seq": event.seq,
        "id": str(event.id),
        "at": event.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": event.action,
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "actor_label": event.actor_label,
        "target_id": str(event.target_id) if event.target_id else None,
        "ip": event.ip,
        "request_id": event.request_id,
        "changes": event.changes,
        "prev_hash": event.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingEvent:
    action: str
    target_id: uuid.UUID | None = None
    changes: dict[str, Any] | None = None


def record(
    session: Session,
    actor: Actor,
    ctx: RequestContext,
    action: str,
    target_id: uuid.UUID | None = None,
    changes: dict[str, Any] | None = None,
) -> None:
    """Append one event to the chain inside the caller's transaction."""
    record_many(session, actor, ctx, [PendingEvent(action, target_id, changes)])


def record_many(
    session: Session, actor: Actor, ctx: RequestContext, events: Iterable[PendingEvent]
) -> int:
    """Append events to the chain in the caller's transaction; returns how many.

    One multi-row INSERT, not ORM objects: for a bulk import those cost more
    than the rest of an import row.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    now = utcnow()
    rows: list[dict[str, Any]] = []
    seq, prev = head.seq, head.hash
    for pending in events:
        seq += 1
        row = {
            "seq": seq,
            "id": uuid.uuid4(),
            "at": now,
            "action": pending.action,
            "actor_id": actor.user_id,
            "actor_label": actor.label[:200],
            "target_id": pending.target_id,
            "ip": ctx.ip,
            "request_id": ctx.request_id,
            "changes": redact(pending.changes or {}),
            "prev_hash": prev,
        }
        row["hash"] = prev = compute_hash(SimpleNamespace(**row))
        rows.append(row)
    if rows:
        session.execute(insert(AuditEvent.__table__), rows)
        head.seq, head.hash = seq, prev
        session.flush()
    return len(rows)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    bad_seq: int | None = None
    bad_id: uuid.UUID | None = None
    reason: str | None = None


def verify_chain(session: Session, batch: int = 5000) -> ChainReport:
    """Recompute every hash in order; name the first event that does not match."""
    prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    stream = session.execute(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    ).scalars()
    for event in stream:
        reason = None
        if event.seq != expected_seq:
            reason = f"sequence gap: expected {expected_seq}, found {event.seq}"
        elif event.prev_hash != prev:
            reason = "prev_hash does not match the previous event"
        elif compute_hash(event) != event.hash:
            reason = "content does not match its hash"
        if reason:
            return ChainReport(False, checked, event.seq, event.id, reason)
        prev = event.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditHead, 1)
    if head is not None and (head.seq != checked or head.hash != prev):
        return ChainReport(
            False, checked, head.seq, None, "chain head does not match the last event"
        )
    return ChainReport(True, checked)
