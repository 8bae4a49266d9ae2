"""SQLAlchemy models. Migrations (usermgmt/migrations) are the only way the schema changes;
a test proves autogenerate finds no difference between these models and the migrations.

Design notes:
- Emails and usernames are normalised (NFKC, then case folding) before they are
  stored, so a plain unique constraint gives case-insensitive uniqueness on both
  databases.
- ``users.search_text`` is a maintained lower-case haystack of email, username
  and names: one column for the substring search, trigram-indexed on PostgreSQL.
  Triggers copy it for live users into the narrow ``user_search`` table, which is
  what searches read.
- Timestamps are UTC. SQLite keeps them naive; they come back timezone-aware.
- No column defaults to the time or to a random id: the services set every
  timestamp and id from the clock and id source they are given
  (usermgmt.core.clock, usermgmt.core.ids), so a row written without one fails
  loudly instead of silently taking the machine's time.
- Secrets (refresh, reset, verification and invitation tokens, API keys) are stored
  only as SHA-256 hex digests; passwords only as bcrypt hashes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    Uuid,
    event,
    false,
    text,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from usermgmt.core.status import status_at
from usermgmt.core.vocabulary import UserStatus

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases."""

    impl = _DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # info["format"]: the JSON Schema format of the write models' field (a test compares).
    email: Mapped[str] = mapped_column(String(255), unique=True, info={"format": "idn-email"})
    username: Mapped[str | None] = mapped_column(String(50), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(100))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    search_text: Mapped[str] = mapped_column(Text, default="")
    # "person" or "service" (usermgmt.core.vocabulary.UserKind); set at creation only.
    kind: Mapped[str] = mapped_column(String(16), default="person", server_default="person")
    # A confirmed second factor (usermgmt.core.services.mfa); its secret is in MfaTotp.
    mfa_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    profile: Mapped[Profile] = relationship(
        back_populates="user", uselist=False, lazy="joined", cascade="all, delete-orphan"
    )
    role_links: Mapped[list[UserRole]] = relationship(
        back_populates="user", lazy="selectin", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_users_created_at_id", "created_at", "id"),
        # The default listing (live users, newest first) and offsets into it, from the
        # index alone (migration 0004).
        # (Its PostgreSQL WHERE, and the PostgreSQL-only indexes: models_pg.)
        Index(
            "ix_users_live_created_at_id",
            "created_at",
            "id",
            sqlite_where=text("deleted_at IS NULL"),
        ),
        Index("ix_users_last_login_at_id", "last_login_at", "id"),
        # Live users by name, as sort=name orders them (migration 0014).
        Index(
            "ix_users_live_name_id",
            text("lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))"),
            "id",
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )

    @property
    def roles(self) -> list[str]:
        return sorted(link.role_name for link in self.role_links)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now

    def status(self, now: datetime) -> UserStatus:
        """The user's status (usermgmt.core.status has the rule)."""
        return status_at(self, now)


def build_search_text(*parts: str | None) -> str:
    return " ".join(p.lower() for p in parts if p)


@event.listens_for(User, "before_insert")
@event.listens_for(User, "before_update")
def _maintain_search_text(_mapper, _conn, user: User) -> None:
    user.search_text = build_search_text(user.email, user.username, user.first_name, user.last_name)


class Profile(Base):
    __tablename__ = "user_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    phone: Mapped[str | None] = mapped_column(String(32))
    bio: Mapped[str | None] = mapped_column(String(1000))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en")

    user: Mapped[User] = relationship(back_populates="profile")


class Role(Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    description: Mapped[str] = mapped_column(String(200), default="")


class UserRole(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role_name: Mapped[str] = mapped_column(
        String(32), ForeignKey("roles.name"), primary_key=True, index=True
    )
    granted_by: Mapped[str | None] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="role_links")


class AuthSession(Base):
    """A refresh-token family: one login on one device."""

    __tablename__ = "sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoke_reason: Mapped[str | None] = mapped_column(String(50))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # Opened for an account that must enrol a second factor first: until it does, the
    # session reaches only the enrolment endpoints (and /auth/me, logout).
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    def is_live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


class RefreshToken(Base):
    """One refresh token of a family; rotation links it to its successor."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    successor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class OneTimeToken(Base):
    """Reset, verification and invitation tokens: hashed, single use, expiring."""

    __tablename__ = "one_time_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An API key: ``umk_`` + 256 random bits, stored as the SHA-256 of the whole key.

    A key that random needs no slow hash: its digest is looked up through the
    unique index, one query per request. ``prefix`` is the key's first characters,
    shown in listings so that people can tell their keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    revoke_reason: Mapped[str | None] = mapped_column(String(50))
    # When `tokens purge` audited the key's expiry (each expiry is audited once).
    expiry_audited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiKeyAddress(Base):
    """Each client address a key was used from, so a first use from a new one is audited."""

    __tablename__ = "api_key_addresses"

    key_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class LoginThrottle(Base):
    """Failed-login counter per submitted identifier, whether or not the account exists."""

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RateLimitCounter(Base):
    """Fixed-window request counters of the API's rate limits (the ``database`` store),
    shared by every server on one database."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class AuditEvent(Base):
    """An append-only, hash-chained audit record. ``seq`` orders the chain."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    action: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    actor_label: Mapped[str] = mapped_column(String(200))
    target_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_actor_id_seq", "actor_id", "seq"),
        Index("ix_audit_events_actor_label_seq", "actor_label", "seq"),
        Index("ix_audit_events_target_id_seq", "target_id", "seq"),
        Index("ix_audit_events_action_seq", "action", "seq"),
    )


class AuditHead(Base):
    """The chain's tip. Writers lock this single row, so the chain stays linear."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


class UserCounts(Base):
    """Live and soft-deleted user counts, kept exact by database triggers (migration 0002).

    Lets an unfiltered listing report ``total`` without counting a million rows.
    """

    __tablename__ = "user_counts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    live: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)
    deleted: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), default=0)


class UserSearch(Base):
    """Each live user's ``search_text`` in a narrow table, kept by triggers (migration 0005).

    Substring search reads this instead of the wide users table: a third of the
    pages to recheck for a common term, and a short term's full scan costs a
    quarter. Soft-deleted users are not here; searches that include them use
    ``users.search_text``. Never written by the application.

    On SQLite the table also has an ``INTEGER PRIMARY KEY`` (``rid``, with
    ``user_id`` unique) that its FTS5 trigram index points at (migration 0009,
    ``usermgmt.core.reads.search_index``); the model leaves both to the migration.
    """

    __tablename__ = "user_search"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    search_text: Mapped[str] = mapped_column(Text)
    # Its trigram index is PostgreSQL's: models_pg.


class Setting(Base):
    """Small key/value store: the generated JWT secret lives here."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MailMessage(Base):
    """Outgoing mail, recorded in the same transaction as the token it carries."""

    __tablename__ = "mail_outbox"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    template: Mapped[str] = mapped_column(String(50))
    to_addr: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    message_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_mail_outbox_status_next_attempt_at", "status", "next_attempt_at"),)


class MfaTotp(Base):
    """An account's TOTP secret, encrypted (usermgmt.core.mfa_keys); active once confirmed.

    ``last_step`` is the RFC 6238 time step of the last code accepted: a code of
    that step or an earlier one is refused, so a code is never used twice.
    """

    __tablename__ = "mfa_totp"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_step: Mapped[int | None] = mapped_column(Integer)


class MfaRecoveryCode(Base):
    """One single-use recovery code, kept as the SHA-256 of its normalised text."""

    __tablename__ = "mfa_recovery_codes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MfaChallenge(Base):
    """The second step of a login: a short-lived single-use token (kept as its digest)
    and the identifier whose lockout counts the wrong codes."""

    __tablename__ = "mfa_challenges"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    identifier_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookSubscription(Base):
    """An app's subscription to change events. The signing secret is stored encrypted
    with a key derived from the server key (usermgmt.core.webhooks.signing)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)  # ["*"]: every type
    description: Mapped[str] = mapped_column(String(500), default="")
    secret_encrypted: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One event for one subscription, written in the transaction of the change.

    ``seq`` orders the events; a subscription gets a user's event only once the
    ones before it for that user are no longer pending. ``webhook_id`` is the
    event's stable Standard Webhooks id (the same on every attempt and replay).
    """

    __tablename__ = "webhook_deliveries"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    webhook_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index(
            "ix_webhook_deliveries_subscription_id_user_id_seq", "subscription_id", "user_id", "seq"
        ),
        Index("ix_webhook_deliveries_subscription_id_created_at", "subscription_id", "created_at"),
    )
