"""One-time tokens and sessions: issued, consumed and revoked inside a caller's transaction.

Each function is told the present (``now``) and, where it adds rows, where their ids come
from (``ids``): the calling service's clock and id source.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from usermgmt.core import secrets
from usermgmt.core.config import Settings
from usermgmt.core.context import RequestContext
from usermgmt.core.errors import InvalidToken
from usermgmt.core.ids import IdSource
from usermgmt.core.models import AuthSession, OneTimeToken, RefreshToken, User
from usermgmt.core.schemas import TokensOut

PURPOSE_TTL = {
    "reset": "reset_token_ttl",
    "verify": "verify_token_ttl",
    "invite": "invite_token_ttl",
}


def issue_one_time(
    session: Session, settings: Settings, user: User, purpose: str, *, now: datetime, ids: IdSource
) -> str:
    """A new single-use token for ``purpose``; any earlier unused one is voided."""
    session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.user_id == user.id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
            OneTimeToken.voided_at.is_(None),
        )
        .values(voided_at=now)
    )
    raw = secrets.new_token()
    ttl = getattr(settings, PURPOSE_TTL[purpose])
    session.add(
        OneTimeToken(
            id=ids.new_uuid(),
            user_id=user.id,
            purpose=purpose,
            token_hash=secrets.digest(raw),
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
        )
    )
    return raw


def consume_one_time(
    session: Session, raw: str, purposes: tuple[str, ...], *, now: datetime
) -> OneTimeToken:
    """Mark the token used, atomically: of concurrent callers exactly one succeeds."""
    token_id = session.execute(
        update(OneTimeToken)
        .where(
            OneTimeToken.token_hash == secrets.digest(raw),
            OneTimeToken.purpose.in_(purposes),
            OneTimeToken.used_at.is_(None),
            OneTimeToken.voided_at.is_(None),
            OneTimeToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(OneTimeToken.id)
    ).scalar_one_or_none()
    if token_id is None:
        raise InvalidToken()
    return session.get(OneTimeToken, token_id)


def open_session(
    session: Session,
    settings: Settings,
    key: bytes,
    user: User,
    ctx: RequestContext,
    *,
    now: datetime,
    ids: IdSource,
) -> tuple[AuthSession, TokensOut]:
    expires = now + timedelta(seconds=settings.refresh_token_ttl)
    auth_session = AuthSession(
        id=ids.new_uuid(),
        user_id=user.id,
        created_at=now,
        expires_at=expires,
        last_used_at=now,
        ip=ctx.ip,
        user_agent=(ctx.user_agent or None) and ctx.user_agent[:300],
    )
    raw = secrets.new_token()
    session.add(auth_session)
    session.add(
        RefreshToken(
            id=ids.new_uuid(),
            session_id=auth_session.id,
            token_hash=secrets.digest(raw),
            issued_at=now,
            expires_at=expires,
        )
    )
    return auth_session, tokens_for(settings, key, user.id, auth_session.id, raw, now=now)


def tokens_for(
    settings: Settings,
    key: bytes,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    refresh: str,
    *,
    now: datetime,
) -> TokensOut:
    access = secrets.encode_access_token(key, user_id, session_id, settings.access_token_ttl, now)
    return TokensOut(
        access_token=access, refresh_token=refresh, expires_in=settings.access_token_ttl
    )


def revoke_sessions(
    session: Session,
    user_id: uuid.UUID,
    reason: str,
    *,
    now: datetime,
    keep: uuid.UUID | None = None,
) -> int:
    """Revoke every live session of the user (but ``keep``); their access tokens die too."""
    stmt = (
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return session.execute(stmt).rowcount or 0


def live_sessions(session: Session, user_id: uuid.UUID, *, now: datetime) -> list[AuthSession]:
    return list(
        session.execute(
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .order_by(AuthSession.created_at.desc())
        ).scalars()
    )
