"""API keys: credentials for apps and cron jobs, scoped, expiring and revocable.

A key is ``umk_`` followed by 256 random bits. Only its SHA-256 digest is stored
(a key that random needs no slow hash), under a unique index: checking a key on
a request is one indexed query that also reads the owner's state and current
roles, so revoking the key, expiring, deactivating, locking or deleting the
owner, or taking a role away bites on the very next request on every server.
Nothing about a key's validity is cached in the process.

A key acts as its owner, with the intersection of its scopes and the owner's
roles at that moment (``Actor.scopes``; every permission check names its scope).

Bookkeeping on use: ``last_used_at``/``last_used_ip`` are written at most once a
minute per key, or at once from a client address the key was never used from
(that first use is audited, and the address remembered), so a busy key does not
turn every read into a write.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from usermgmt.core import audit
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import upsert
from usermgmt.core.errors import (
    AuthenticationError,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from usermgmt.core.key_schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    ApiKeyQuery,
    KeyState,
)
from usermgmt.core.models import ApiKey, ApiKeyAddress, User, UserRole
from usermgmt.core.schemas import parse
from usermgmt.core.secrets import digest
from usermgmt.core.services.base import ServiceBase, load_user, parse_uuid

KEY_PREFIX = "umk_"
KEY_BYTES = 32  # 256 bits
# What listings show of a key: ``umk_`` and its first eight random characters.
DISPLAY_CHARS = len(KEY_PREFIX) + 8
# The longest string worth looking up (a key is 47 characters).
MAX_KEY_LENGTH = 100
# ``last_used_at`` is written at most this often per key (unless from a new address).
LAST_USED_EVERY = timedelta(minutes=1)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_BYTES)


def looks_like_key(credential: str) -> bool:
    """Whether a bearer credential is meant as an API key (rather than an access token)."""
    return credential.startswith(KEY_PREFIX)


def key_actor(key_id: uuid.UUID, user_id: uuid.UUID, roles, scopes) -> Actor:
    return Actor(
        label=f"key:{key_id}",
        user_id=user_id,
        roles=frozenset(roles),
        scopes=frozenset(scopes),
        key_id=key_id,
    )


class ApiKeyService(ServiceBase):
    # ---- management --------------------------------------------------------

    def create(
        self, actor: Actor, ctx: RequestContext, data: ApiKeyCreate | Mapping[str, Any]
    ) -> ApiKeyCreated:
        """Make a key for the caller (or, for an admin, for ``user_id``); the secret is
        in the answer and nowhere else."""
        actor.require_authenticated()
        spec = parse(ApiKeyCreate, data)
        owner_id = spec.user_id or actor.user_id
        if owner_id is None:
            raise ValidationError.for_field("user_id", "Name the user who will own the key")
        if not actor.is_self(owner_id):
            actor.require_admin()
        if actor.scopes is not None and not actor.allows("admin"):
            wider = sorted(set(spec.scopes) - actor.scopes)
            if wider:
                raise PermissionDenied(
                    f"A key cannot make a key with scopes it lacks ({', '.join(wider)})"
                )
        secret = new_key()
        now = self.clock.now()
        with self.db.write() as s:
            owner = load_user(s, owner_id)
            if not owner.is_active:
                raise Conflict("The user is deactivated; activate them before giving them a key")
            key = ApiKey(
                id=self.ids.new_uuid(),
                user_id=owner.id,
                name=spec.name,
                prefix=secret[:DISPLAY_CHARS],
                secret_hash=digest(secret),
                scopes=sorted(set(spec.scopes)),
                created_at=now,
                created_by=actor.label,
                expires_at=now + timedelta(days=spec.expires_in_days)
                if spec.expires_in_days
                else None,
            )
            s.add(key)
            s.flush()
            self.record_event(s, actor, ctx, "api_key.created", owner.id, _audited(key))
            return ApiKeyCreated(key=_out(key, owner, now), secret=secret)

    def list(
        self, actor: Actor, query: ApiKeyQuery | Mapping[str, Any] | None = None
    ) -> ApiKeyList:
        """The caller's keys; an admin's (or an operator's) for ``user_id``, or all.

        An operator, who owns no keys, sees every key unless a user is named.
        """
        actor.require_authenticated()
        q = parse(ApiKeyQuery, query or {})
        everyone = q.all or (actor.user_id is None and q.user_id is None)
        owner_id = None if everyone else (q.user_id or actor.user_id)
        if everyone or not actor.is_self(owner_id):
            actor.require_admin()
        now = self.clock.now()
        stmt = (
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .order_by(ApiKey.created_at.desc(), ApiKey.id)
        )
        with self.db.read() as s:
            if owner_id is not None:
                load_user(s, owner_id, include_deleted=True)  # NotFound for nobody
                stmt = stmt.where(ApiKey.user_id == owner_id)
            rows = s.execute(stmt).unique().all()
            return ApiKeyList(data=[_out(key, owner, now) for key, owner in rows])

    def revoke(self, actor: Actor, ctx: RequestContext, key_id: str) -> bool:
        """Revoke a key at once; False when it already was. Another user's key is
        NotFound to anyone but an admin."""
        actor.require_authenticated()
        kid = parse_uuid(key_id)
        with self.db.write() as s:
            key = s.get(ApiKey, kid, with_for_update=True) if kid is not None else None
            if key is None or not (actor.is_self(key.user_id) or actor.is_admin):
                raise NotFound("API key not found")
            if not actor.is_self(key.user_id):
                actor.require_admin()
            if key.revoked_at is not None:
                return False
            key.revoked_at = self.clock.now()
            key.revoke_reason = "revoked"
            self.record_event(s, actor, ctx, "api_key.revoked", key.user_id, _audited(key))
            return True

    # ---- authentication ----------------------------------------------------

    def authenticate(self, secret: str, ctx: RequestContext) -> Actor:
        """The actor a key stands for, checked in one indexed query (AuthenticationError
        for an unknown, revoked or expired key, or an owner who may not act now)."""
        if not looks_like_key(secret) or len(secret) > MAX_KEY_LENGTH:
            raise AuthenticationError("Invalid API key")
        ip = ctx.ip or ""
        with self.db.connect() as conn:
            rows = conn.execute(_KEY_CHECK, {"secret_hash": digest(secret), "ip": ip}).all()
        if not rows:
            raise AuthenticationError("Invalid API key")
        row = rows[0]
        now = self.clock.now()
        # Only the holder of the key gets this far: they are told what is true of it.
        if row.revoked_at is not None:
            raise AuthenticationError("API key revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationError("API key expired")
        refusal = _owner_refusal(row, now)
        if refusal:
            raise AuthenticationError(refusal)
        actor = key_actor(
            row.key_id, row.user_id, (r.role_name for r in rows if r.role_name), row.scopes
        )
        new_address = bool(ip) and row.seen_at is None
        if new_address or row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            self._note_use(actor, ctx, row, now, new_address)
        return actor

    def _note_use(
        self, actor: Actor, ctx: RequestContext, row, now: datetime, new_address: bool
    ) -> None:
        with self.db.write() as s:
            s.execute(
                update(ApiKey)
                .where(ApiKey.id == row.key_id)
                .values(last_used_at=now, last_used_ip=ctx.ip)
            )
            if new_address and _remember_address(s, self.db.dialect, row.key_id, ctx.ip, now):
                self.record_event(
                    s,
                    actor,
                    ctx,
                    "api_key.used_from_new_address",
                    row.user_id,
                    {"key_id": str(row.key_id), "name": row.name, "ip": ctx.ip},
                )


def audit_expiries(
    service: ServiceBase, actor: Actor, ctx: RequestContext, *, batch: int = 500
) -> int:
    """Audit, once each, the keys that expired since the last purge; how many.

    ``tokens purge`` calls it: a key's expiry is an event of the clock, not of a
    request, so it is recorded by the first purge after it (run purge from cron).
    """
    total = 0
    while True:
        with service.db.write() as s:
            now = service.clock.now()
            stmt = (
                select(ApiKey)
                .where(
                    ApiKey.expires_at <= now,
                    ApiKey.expiry_audited_at.is_(None),
                    ApiKey.revoked_at.is_(None),
                )
                .order_by(ApiKey.expires_at)
                .limit(batch)
            )
            if service.db.is_postgres:
                stmt = stmt.with_for_update(skip_locked=True)
            keys = list(s.execute(stmt).scalars())
            events = []
            for key in keys:
                key.expiry_audited_at = now
                events.append(audit.PendingEvent("api_key.expired", key.user_id, _audited(key)))
            if events:
                service.record_events(s, actor, ctx, events)
        total += len(keys)
        if len(keys) < batch:
            return total


def revoke_keys(s: Session, user_id: uuid.UUID, reason: str, *, now: datetime) -> int:
    """Revoke every live key of a user in the caller's transaction; how many."""
    stmt = (
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason)
    )
    return s.execute(stmt).rowcount or 0


def dead_keys_condition(now: datetime, retention: timedelta):
    """Keys revoked, or expired (and their expiry audited), more than ``retention`` ago."""
    cutoff = now - retention
    return (ApiKey.revoked_at < cutoff) | (
        (ApiKey.expires_at < cutoff) & ApiKey.expiry_audited_at.is_not(None)
    )


def state_of(key: ApiKey, now: datetime) -> KeyState:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def _remember_address(s: Session, dialect: str, key_id, ip: str, now: datetime) -> bool:
    """Record that the key was used from ``ip``; False when another request already did."""
    stmt = (
        upsert(dialect)(ApiKeyAddress)
        .values(key_id=key_id, ip=ip, first_seen_at=now)
        .on_conflict_do_nothing(index_elements=["key_id", "ip"])
        .returning(ApiKeyAddress.ip)
    )
    return s.execute(stmt).first() is not None


def _owner_refusal(row, now: datetime) -> str | None:
    if row.deleted_at is not None:
        return "Account deleted"
    if not row.is_active:
        return "Account deactivated"
    if row.locked_until is not None and row.locked_until > now:
        return "Account locked by an admin"
    return None


def _audited(key: ApiKey) -> dict[str, Any]:
    """What the audit log says about a key: never its secret, digest or prefix."""
    return {
        "key_id": str(key.id),
        "name": key.name,
        "scopes": list(key.scopes),
        "expires_at": key.expires_at,
    }


def _out(key: ApiKey, owner: User, now: datetime) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        scopes=list(key.scopes),
        state=state_of(key, now),
        user_id=key.user_id,
        owner=owner.username or owner.email,
        owner_kind=owner.kind,
        created_at=key.created_at,
        created_by=key.created_by,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        last_used_ip=key.last_used_ip,
        revoked_at=key.revoked_at,
    )


# A key, its owner's state and current roles, and whether the key was used from the
# client's address before: one indexed lookup (one row per role).
_KEY_CHECK = (
    select(
        ApiKey.id.label("key_id"),
        ApiKey.name,
        ApiKey.scopes,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        ApiKey.last_used_at,
        User.id.label("user_id"),
        User.deleted_at,
        User.is_active,
        User.locked_until,
        UserRole.role_name,
        ApiKeyAddress.first_seen_at.label("seen_at"),
    )
    .join(User, User.id == ApiKey.user_id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
    .outerjoin(
        ApiKeyAddress,
        and_(
            ApiKeyAddress.key_id == ApiKey.id,
            ApiKeyAddress.ip == bindparam("ip", type_=ApiKeyAddress.ip.type),
        ),
    )
    .where(ApiKey.secret_hash == bindparam("secret_hash", type_=ApiKey.secret_hash.type))
)
