"""The hash-chained audit log.

Each event stores the hash of the previous one. Writers lock the single
``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write
transactions are already serialised by ``BEGIN IMMEDIATE``), so the chain
stays linear under concurrent writers. Events are written by the services in
the same transaction as the change they describe. On PostgreSQL a trigger
refuses UPDATE and DELETE on the table (see the initial migration).

A chain checks itself only from the inside: emptying the events and the head
together leaves a valid empty chain. Two outside anchors catch that: every user
row must have its creation event, and a head recorded earlier (``SEQ:HASH``,
published in the server's start-up log, ``/metrics`` and ``usermgmt audit head``)
must still be in the chain (``verify_chain(expect=…)``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.ids import IdSource
from usermgmt.core.models import AuditEvent, AuditHead, User
from usermgmt.core.results import ChainHead, ChainReport, parse_head  # noqa: F401 - re-exported
from usermgmt.core.webhooks import events as webhook_events

GENESIS_HASH = "0" * 64
# The events that bring a user into being, one per path: create/ensure, register, import.
CREATION_ACTIONS = ("user.created", "user.registered", "user.imported")
MISSING_SHOWN = 20  # users without a creation event named in a report (all are counted)
REDACTED = "[redacted]"
PROGRESS_EVERY = 1000  # events between two calls of verify_chain's progress callback
# progress(checked, total) of a chain verification; raising from it stops the check.
Progress = Callable[[int, int], None]
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
    *,
    at: datetime,
    ids: IdSource,
) -> None:
    """Append one event (at ``at``, its id from ``ids``) to the chain inside the caller's
    transaction. Services call it through ``ServiceBase.record_event``."""
    record_many(session, actor, ctx, [PendingEvent(action, target_id, changes)], at=at, ids=ids)


def record_many(
    session: Session,
    actor: Actor,
    ctx: RequestContext,
    events: Iterable[PendingEvent],
    *,
    at: datetime,
    ids: IdSource,
) -> int:
    """Append events (all at ``at``, their ids from ``ids``) to the chain in the caller's
    transaction; returns how many.

    One multi-row INSERT, not ORM objects: for a bulk import those cost more
    than the rest of an import row.
    """
    head = session.execute(
        select(AuditHead).where(AuditHead.id == 1).with_for_update()
    ).scalar_one()
    rows: list[dict[str, Any]] = []
    seq, prev = head.seq, head.hash
    for pending in events:
        seq += 1
        row = {
            "seq": seq,
            "id": ids.new_uuid(),
            "at": at,
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
        # The change's webhook events, in the same transaction (usermgmt.core.webhooks).
        webhook_events.emit(session, rows, at=at, ids=ids)
    return len(rows)


def read_head(session: Session) -> ChainHead | None:
    """The stored head, or None when its row is gone (only tampering removes it)."""
    head = session.get(AuditHead, 1)
    return ChainHead(head.seq, head.hash) if head is not None else None


def verify_chain(
    session: Session,
    expect: ChainHead | None = None,
    batch: int = 5000,
    *,
    progress: Progress | None = None,
) -> ChainReport:
    """Recompute every hash in order; name the first event that does not match.

    Then the anchors: the stored head must be the last event, ``expect`` (a head
    recorded earlier) must still be in the chain, and every user must have a
    creation event. The first failure found is the one reported.

    ``progress(checked, total)`` is called before the first event, every
    PROGRESS_EVERY events and after the last (``total``: the stored head's seq, the
    events there should be); whatever it raises stops the check and propagates, so
    a caller can cancel from it.
    """
    head = read_head(session)
    total = head.seq if head is not None else 0
    if progress is not None:
        progress(0, total)

    def broken(checked: int, seq: int | None, event_id, reason: str) -> ChainReport:
        return ChainReport(False, checked, seq, event_id, reason, head)

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
        elif expect is not None and event.seq == expect.seq and event.hash != expect.hash:
            reason = "its hash is not the recorded head's: the chain was rewritten or rewound"
        if reason:
            return broken(checked, event.seq, event.id, reason)
        prev = event.hash
        expected_seq += 1
        checked += 1
        if progress is not None and checked % PROGRESS_EVERY == 0:
            progress(checked, max(total, checked))
    if progress is not None:
        progress(checked, max(total, checked))
    if head is None:
        return broken(checked, None, None, "the chain head row is missing")
    if head.seq != checked or head.hash != prev:
        return broken(checked, head.seq, None, "chain head does not match the last event")
    if expect is not None and expect.seq > checked:
        return broken(
            checked,
            expect.seq,
            None,
            f"the chain ends at event #{checked}, before the recorded head: truncated or rewound",
        )
    missing, count = users_without_creation(session)
    if count:
        return ChainReport(
            False,
            checked,
            reason=f"{count:,} user(s) have no creation event ({', '.join(CREATION_ACTIONS)})",
            head=head,
            users_without_creation=missing,
            users_without_creation_count=count,
        )
    return ChainReport(True, checked, head=head)


def users_without_creation(session: Session) -> tuple[tuple[uuid.UUID, ...], int]:
    """Users (deleted ones too) that no creation event names: the first few, and how many."""
    created = (
        select(AuditEvent.seq)
        .where(AuditEvent.target_id == User.id, AuditEvent.action.in_(CREATION_ACTIONS))
        .exists()
    )
    count = session.execute(select(func.count()).select_from(User).where(~created)).scalar_one()
    if not count:
        return (), 0
    first = session.execute(
        select(User.id).where(~created).order_by(User.created_at, User.id).limit(MISSING_SHOWN)
    ).scalars()
    return tuple(first), count
