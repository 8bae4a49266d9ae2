"""Recording outgoing mail in the caller's transaction (delivery is a separate step).

A message is stored as a template name plus its context and rendered when it is
delivered. A context may hold a one-time link; delivery clears secret entries
once the server accepted the message (see the mail delivery service).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from usermgmt.core.background import CommitSignal
from usermgmt.core.config import Settings
from usermgmt.core.ids import IdSource
from usermgmt.core.models import MailMessage

TEMPLATES = (
    "verify_email",
    "password_reset",
    "invitation",
    "password_changed",
    "email_changed",
    "mfa_enabled",
    "mfa_disabled",
    "mfa_reset",
    "mfa_recovery_code_used",
    "webhook_disabled",
)

# After a transaction that enqueued mail commits, this process's background
# deliverer wakes up instead of waiting for its next poll.
enqueued = CommitSignal("usermgmt_mail_enqueued")
add_listener = enqueued.add_listener
remove_listener = enqueued.remove_listener


def message_id_for(msg_id: uuid.UUID, mail_from: str) -> str:
    domain = mail_from.rsplit("@", 1)[-1].strip("> ") or "localhost"
    return f"<{msg_id}@{domain}>"


def enqueue(
    session: Session,
    settings: Settings,
    template: str,
    to_addr: str,
    *,
    user_id: uuid.UUID | None,
    context: dict[str, Any],
    now: datetime,
    ids: IdSource,
) -> MailMessage:
    """Queue one message (due at once) in the caller's transaction; sent after the commit."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown mail template {template!r}")
    msg_id = ids.new_uuid()
    msg = MailMessage(
        id=msg_id,
        template=template,
        to_addr=to_addr,
        user_id=user_id,
        context=context,
        message_id=message_id_for(msg_id, settings.mail_from),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(msg)
    enqueued.after_commit(session)
    return msg


# The account pages `usermgmt serve` serves for each kind of one-time link.
LINK_PAGES = {
    "verify": "/verify-email",
    "reset": "/reset-password",
    "invite": "/accept-invite",
}


def link(settings: Settings, purpose: str, token: str) -> str:
    """The link a mail carries for a one-time token of ``purpose`` (verify, reset, invite):
    the operator's link template for it, or our own page under the public URL."""
    template = getattr(settings, f"link_template_{purpose}") or (
        f"{settings.public_url.rstrip('/')}{LINK_PAGES[purpose]}?token={{token}}"
    )
    return template.replace("{token}", token)
