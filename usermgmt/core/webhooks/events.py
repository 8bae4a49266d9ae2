"""Event types, and the delivery rows written in the transaction of the change.

``usermgmt.core.audit.record_many`` calls :func:`emit` with the audit rows it
has just inserted: every change already writes its audit event there, whichever
face made it (and a bulk import writes one per user), so no write path can
forget its webhook, and a change that rolls back takes its deliveries with it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from usermgmt.core.ids import IdSource

ALL = "*"
TEST_TYPE = "webhook.test"
# Audit action → event type. Actions not named (logins, refreshes, mails sent,
# webhook administration) are not events.
ACTION_TYPES = {
    "user.created": "user.created",
    "user.registered": "user.created",
    "user.imported": "user.created",
    "user.updated": "user.updated",
    "user.deleted": "user.deleted",
    "user.restored": "user.restored",
    "user.locked": "user.locked",
    "user.unlocked": "user.unlocked",
    "user.roles_changed": "user.roles_changed",
    "user.password_changed": "user.password_changed",
    "user.password_reset": "user.password_changed",
    "user.password_set": "user.password_changed",
    "user.email_verified": "user.email_verified",
    "session.revoked": "session.revoked",
}
MFA_PREFIX = "user.mfa"  # every second-factor change: enrolled, removed, reset
MFA_TYPE = "user.mfa_changed"
EVENT_TYPES = tuple(sorted({*ACTION_TYPES.values(), MFA_TYPE}))
USER_BATCH = 500


def event_type_for(action: str) -> str | None:
    if action.startswith(MFA_PREFIX):
        return MFA_TYPE
    return ACTION_TYPES.get(action)


def new_webhook_id(ids: IdSource) -> str:
    return f"msg_{ids.new_uuid().hex}"


def wants(events: list[str], event_type: str) -> bool:
    return ALL in events or event_type in events


def timestamp(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def emit(
    session: Session, audit_rows: Iterable[dict[str, Any]], *, at: datetime, ids: IdSource
) -> int:
    """Queue one delivery per (event, interested enabled subscription), stamped ``at`` with
    ids from ``ids`` (the audit events' own); returns how many."""
    from usermgmt.core.models import WebhookDelivery, WebhookSubscription

    typed = [(row, t) for row in audit_rows if (t := event_type_for(row["action"])) is not None]
    if not typed:
        return 0
    subscriptions = session.execute(
        select(WebhookSubscription.id, WebhookSubscription.events).where(
            WebhookSubscription.enabled.is_(True)
        )
    ).all()
    if not subscriptions:
        return 0
    wanted = [
        (row, t, [sid for sid, events in subscriptions if wants(events or [], t)])
        for row, t in typed
    ]
    wanted = [w for w in wanted if w[2]]
    if not wanted:
        return 0
    users = _users(session, {row["target_id"] for row, _, _ in wanted if row["target_id"]}, at)
    deliveries = []
    for row, event_type, subscription_ids in wanted:
        user = users.get(row["target_id"])
        payload = {
            "type": event_type,
            "timestamp": timestamp(row["at"]),
            "data": {"user": user, "changes": row["changes"], "audit_event_id": str(row["id"])},
        }
        webhook_id = new_webhook_id(ids)
        deliveries.extend(
            {
                "id": ids.new_uuid(),
                "subscription_id": sid,
                "webhook_id": webhook_id,
                "event_type": event_type,
                "user_id": row["target_id"],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": row["at"],
                "created_at": row["at"],
            }
            for sid in subscription_ids
        )
    session.execute(insert(WebhookDelivery.__table__), deliveries)
    from usermgmt.core.webhooks import wakeup

    wakeup.after_commit(session)
    return len(deliveries)


def _users(
    session: Session, user_ids: set[uuid.UUID], now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """The API's representation of each user as the transaction leaves it, its status the
    one at ``now`` (never a password hash, token or secret: the representation has none)."""
    from usermgmt.core.models import User
    from usermgmt.core.schemas import user_out

    session.flush()
    found: dict[uuid.UUID, dict[str, Any]] = {}
    ordered = []
    for uid in sorted(user_ids):  # the users the change loaded are at hand, as it left them
        user = session.identity_map.get(identity_key(User, uid))
        if user is not None and "role_links" in user.__dict__ and "profile" in user.__dict__:
            found[uid] = user_out(user, now).model_dump(mode="json")
        else:
            ordered.append(uid)
    for start in range(0, len(ordered), USER_BATCH):
        chunk = ordered[start : start + USER_BATCH]
        rows = session.execute(select(User).where(User.id.in_(chunk))).unique().scalars()
        for user in rows:
            found[user.id] = user_out(user, now).model_dump(mode="json")
    return found
