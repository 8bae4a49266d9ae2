"""Sessions of a user: list the live ones, revoke one or all."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.orm import Session

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import NotFound
from usermgmt.core.models import AuthSession
from usermgmt.core.schemas import SessionOut
from usermgmt.core.services import credentials
from usermgmt.core.services.base import ServiceBase, load_user, parse_uuid


def session_out(s: AuthSession) -> SessionOut:
    return SessionOut(
        id=s.id,
        created_at=s.created_at,
        expires_at=s.expires_at,
        last_used_at=s.last_used_at,
        revoked_at=s.revoked_at,
        ip=s.ip,
        user_agent=s.user_agent,
    )


def sign_out(
    service: ServiceBase,
    s: Session,
    actor: Actor,
    ctx: RequestContext,
    user_id: uuid.UUID,
    now: datetime,
) -> int:
    """Revoke every live session of the user (an operator's "sign out everywhere"), audited
    by ``service``; how many were live."""
    count = credentials.revoke_sessions(s, user_id, "revoked_by_admin", now=now)
    service.record_event(s, actor, ctx, "session.revoked", user_id, {"all": True, "count": count})
    return count


class SessionService(ServiceBase):
    def list(self, actor: Actor, user_id: str) -> list[SessionOut]:
        actor.require_admin("sessions:manage")
        with self.db.read() as s:
            user = load_user(s, user_id, include_deleted=True)
            return [
                session_out(x) for x in credentials.live_sessions(s, user.id, now=self.clock.now())
            ]

    def revoke_all(self, actor: Actor, ctx: RequestContext, user_id: str) -> int:
        actor.require_admin("sessions:manage")
        with self.db.write() as s:
            user = load_user(s, user_id, include_deleted=True)
            return sign_out(self, s, actor, ctx, user.id, self.clock.now())

    def revoke(self, actor: Actor, ctx: RequestContext, session_id: str) -> None:
        actor.require_admin("sessions:manage")
        sid = parse_uuid(session_id)
        with self.db.write() as s:
            sess = s.get(AuthSession, sid, with_for_update=True) if sid else None
            if sess is None:
                raise NotFound("Session not found")
            if sess.revoked_at is None:
                sess.revoked_at = self.clock.now()
                sess.revoke_reason = "revoked_by_admin"
                self.record_event(
                    s, actor, ctx, "session.revoked", sess.user_id, {"session_id": str(sid)}
                )
