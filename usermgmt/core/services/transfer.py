"""Bulk import and streaming export of users.

Import is one transaction: with ``on_conflict="fail"`` (the default) any bad
row rolls everything back, and so does a dry run or an interrupt. Rows are
processed in chunks (one query per chunk to find existing emails/usernames,
bulk inserts, one audit event per user). Existing bcrypt hashes are stored as
they are; plaintext passwords are hashed on every core in parallel (bcrypt
releases the GIL).

Export streams rows with constant memory: account fields, roles and profile.
It never includes password hashes unless asked (``include_password_hash``).
Import reads an export back; what it does not apply (``EXPORT_ONLY``: ids,
timestamps, the deleted and locked state) is system state, not user data, so
a round trip loses only the passwords when their hashes were left out.
With ``on_conflict="update"`` only the fields a row gives are changed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator
from sqlalchemy import insert, select

from usermgmt.core import audit, passwords
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.errors import Conflict, ValidationError
from usermgmt.core.models import Profile, User, UserRole, build_search_text
from usermgmt.core.results import ImportReport, RowError
from usermgmt.core.schemas import (
    AvatarUrl,
    Bio,
    Email,
    Locale,
    Name,
    Phone,
    TimezoneName,
    Username,
    WriteModel,
    validation_error_from,
)
from usermgmt.core.services.accounts import PROFILE_DEFAULTS, PROFILE_FIELDS
from usermgmt.core.services.base import ServiceBase
from usermgmt.core.services.roles import role_names

CHUNK = 1000
# Bad rows that stop an import (None: no limit, every bad row is reported).
DEFAULT_MAX_ERRORS = 1000
OnConflict = Literal["fail", "skip", "update"]
EXPORT_FIELDS = [
    "id",
    "email",
    "username",
    "first_name",
    "last_name",
    "roles",
    "is_active",
    "email_verified",
    *PROFILE_FIELDS,
    "created_at",
    "last_login_at",
    "deleted_at",
]
# Columns an export writes that an import reads back but does not apply.
EXPORT_ONLY = {"id", "created_at", "last_login_at", "deleted_at", "status", "locked_until"}


class ImportRow(WriteModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    username: Username | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    roles: list[str] = Field(default_factory=lambda: ["user"])
    is_active: bool = True
    email_verified: bool = False
    password_hash: str | None = None
    password: str | None = None
    phone: Phone | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None
    timezone: TimezoneName | None = None
    locale: Locale | None = None

    @field_validator(
        "username",
        "first_name",
        "last_name",
        "password_hash",
        "password",
        *PROFILE_FIELDS,
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, v: Any) -> Any:
        return None if v == "" else v

    @field_validator("roles", mode="before")
    @classmethod
    def _split_roles(cls, v: Any) -> Any:
        if v is None or v == "":
            return ["user"]
        if isinstance(v, str):
            v = [p for p in v.replace(",", ";").split(";") if p.strip()]
        if not isinstance(v, list) or not all(isinstance(r, str) for r in v):
            raise ValueError("roles must be role names (a list, or ';'-separated)")
        try:
            return role_names(v)
        except ValidationError as exc:  # one bad row, not a failed import
            raise ValueError("; ".join(exc.field_errors.get("role", [exc.message]))) from None

    @field_validator("password_hash")
    @classmethod
    def _bcrypt(cls, v: str | None) -> str | None:
        if v is not None and not passwords.is_bcrypt_hash(v):
            raise ValueError("password_hash must be a bcrypt hash ($2b$…)")
        return v


class _Abort(Exception):
    """Internal: leave the import transaction without committing."""


class TransferService(ServiceBase):
    def import_users(
        self,
        actor: Actor,
        ctx: RequestContext,
        rows: Iterable[tuple[int, dict[str, Any] | RowError]],
        *,
        on_conflict: OnConflict = "fail",
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
        max_errors: int | None = DEFAULT_MAX_ERRORS,
    ) -> ImportReport:
        """Import ``(line_number, record)`` pairs. See the module docstring for the rules.

        A reader that cannot parse a row (malformed JSON, a wrong field count)
        passes a :class:`RowError` as its record: it is reported and counted
        like any other bad row. Rows are checked in file order; the
        ``max_errors``-th bad row (None: no limit) stops the checking, the rest
        of ``rows`` is only counted, and nothing is written.
        """
        actor.require_admin("users:write")
        if on_conflict not in ("fail", "skip", "update"):
            raise ValidationError.for_field("on_conflict", "one of fail, skip, update")
        if max_errors is not None and max_errors < 1:
            raise ValidationError.for_field("max_errors", "at least 1, or None for no limit")
        report = ImportReport(dry_run=dry_run)
        seen_emails: set[str] = set()
        seen_usernames: set[str] = set()
        pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
        items = iter(rows)
        try:
            with self.db.write() as s:
                while not report.stopped:
                    chunk = list(islice(items, CHUNK))
                    if not chunk:
                        break
                    self._import_chunk(
                        s,
                        actor,
                        ctx,
                        chunk,
                        on_conflict,
                        report,
                        seen_emails,
                        seen_usernames,
                        pool,
                        max_errors,
                    )
                    if progress:
                        progress(len(chunk))
                if report.stopped or dry_run or (report.errors and on_conflict == "fail"):
                    raise _Abort()
                report.committed = True
        except _Abort:
            report.committed = False
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        if report.stopped:  # counted outside the transaction: it holds the write lock
            for n, _item in enumerate(items, start=1):
                report.not_checked += 1
                if progress and n % CHUNK == 0:
                    progress(CHUNK)
        if report.committed and (report.created or report.updated):
            self.db.merge_pending_index_entries()  # searches are fast at once, not in a minute
        return report

    def _import_chunk(
        self,
        s,
        actor,
        ctx,
        chunk,
        on_conflict,
        report,
        seen_emails,
        seen_usernames,
        pool,
        max_errors,
    ) -> None:
        """Check and apply one chunk. Each row's outcome is reached in file order, so the
        ``max_errors``-th bad row stops the import exactly there."""
        checked: list[tuple[int, ImportRow | RowError]] = []
        for line, record in chunk:
            checked.append((line, self._check_row(line, record, seen_emails, seen_usernames)))
        valid = [(line, row) for line, row in checked if isinstance(row, ImportRow)]
        by_email: dict[str, User] = {}
        taken_usernames: dict[str, uuid.UUID] = {}
        hashed: dict[int, str] = {}
        if valid:
            by_email, taken_usernames = self._existing(s, valid)
            to_hash = [r for _, r in valid if r.password is not None]
            rounds = self.settings.bcrypt_rounds
            hashed = dict(
                zip(
                    (id(r) for r in to_hash),
                    pool.map(lambda r: passwords.hash_password(r.password, rounds), to_hash),
                    strict=True,
                )
            )

        def stop_at(line: int) -> bool:
            if max_errors is None or len(report.errors) < max_errors:
                return False
            report.stopped_at_line = line
            return True

        now = self.clock.now()
        new_users, new_profiles, new_roles, events = [], [], [], []
        for index, (line, row) in enumerate(checked):
            report.rows += 1
            if isinstance(row, RowError):
                report.errors.append(row)
            else:
                pw_hash = hashed.get(id(row), row.password_hash)
                existing = by_email.get(row.email)
                owner = taken_usernames.get(row.username) if row.username else None
                if existing is None:
                    if owner is not None:
                        report.errors.append(RowError(line, f"username {row.username} is taken"))
                    else:
                        self._new_user(actor, row, pw_hash, now, new_users, new_profiles, new_roles)
                        events.append(self._imported_event(new_users[-1]["id"], row))
                        report.created += 1
                elif on_conflict == "fail":
                    report.errors.append(RowError(line, f"email {row.email} already exists"))
                elif on_conflict == "skip":
                    report.skipped += 1
                elif owner is not None and owner != existing.id:
                    report.errors.append(RowError(line, f"username {row.username} is taken"))
                else:
                    self._update_existing(
                        s, actor, line, existing, row, pw_hash, now, events, report
                    )
            if stop_at(line):
                report.not_checked += len(checked) - index - 1
                return  # nothing is written: the caller rolls back
        if new_users:
            s.execute(insert(User.__table__), new_users)
            s.execute(insert(Profile.__table__), new_profiles)
            if new_roles:
                s.execute(insert(UserRole.__table__), new_roles)
        if events:
            self.record_events(s, actor, ctx, events)

    @staticmethod
    def _check_row(line, record, seen_emails, seen_usernames) -> ImportRow | RowError:
        """The row validated, or why it is bad (in itself, or as a repeat in the file)."""
        if isinstance(record, RowError):
            return record
        record = {k: v for k, v in record.items() if k not in EXPORT_ONLY}
        try:
            row = ImportRow.model_validate(record)
        except Exception as exc:  # pydantic errors become one readable reason
            from pydantic import ValidationError as PydanticValidationError

            if not isinstance(exc, PydanticValidationError):
                raise
            return RowError(line, _reason(validation_error_from(exc)))
        if row.password is not None:
            problems = passwords.policy_problems(row.password)
            if problems:
                return RowError(line, "password " + "; ".join(problems))
        if row.email in seen_emails:
            return RowError(line, f"email {row.email} appears twice in the file")
        if row.username and row.username in seen_usernames:
            return RowError(line, f"username {row.username} appears twice in the file")
        seen_emails.add(row.email)
        if row.username:
            seen_usernames.add(row.username)
        return row

    @staticmethod
    def _existing(s, valid) -> tuple[dict[str, User], dict[str, uuid.UUID]]:
        """The users the chunk's emails name, and the owners of its usernames (two queries)."""
        emails = [r.email for _, r in valid]
        usernames = [r.username for _, r in valid if r.username]
        by_email = {
            u.email: u
            for u in s.execute(select(User).where(User.email.in_(emails))).unique().scalars()
        }
        taken_usernames = (
            dict(
                s.execute(select(User.username, User.id).where(User.username.in_(usernames))).all()
            )
            if usernames
            else {}
        )
        return by_email, taken_usernames

    def _new_user(self, actor, row, pw_hash, now, new_users, new_profiles, new_roles) -> None:
        uid = self.ids.new_uuid()
        new_users.append(
            {
                "id": uid,
                "email": row.email,
                "username": row.username,
                "first_name": row.first_name,
                "last_name": row.last_name,
                "password_hash": pw_hash,
                "password_changed_at": now if pw_hash else None,
                "is_active": row.is_active,
                "email_verified_at": now if row.email_verified else None,
                "created_at": now,
                "updated_at": now,
                "search_text": build_search_text(
                    row.email, row.username, row.first_name, row.last_name
                ),
            }
        )
        profile = {f: getattr(row, f) for f in PROFILE_FIELDS}
        for name, default in PROFILE_DEFAULTS.items():
            profile[name] = profile[name] or default
        new_profiles.append({"user_id": uid, **profile})
        new_roles.extend(
            {"user_id": uid, "role_name": r, "granted_by": actor.label, "granted_at": now}
            for r in row.roles
        )

    @staticmethod
    def _imported_event(uid: uuid.UUID, row: ImportRow) -> audit.PendingEvent:
        return audit.PendingEvent(
            "user.imported", uid, {"email": row.email, "username": row.username, "roles": row.roles}
        )

    @staticmethod
    def _update_existing(
        s, actor, line: int, user: User, row: ImportRow, pw_hash, now, events, report
    ) -> None:
        """Change the fields the row gives (a column missing from the file changes
        nothing), under the rules of users.update: the last active admin stays,
        and a deactivated user's sessions end."""
        from usermgmt.core.services import credentials
        from usermgmt.core.services.accounts import set_roles, snapshot
        from usermgmt.core.services.guards import ensure_other_active_admin

        given = row.model_fields_set
        deactivate = "is_active" in given and not row.is_active and user.is_active
        demote = "roles" in given and "admin" in user.roles and "admin" not in row.roles
        try:
            if deactivate:
                ensure_other_active_admin(s, user, "deactivate", now=now)
            if demote:
                ensure_other_active_admin(s, user, "demote", now=now)
        except Conflict as exc:
            report.errors.append(RowError(line, exc.message))
            return
        before = snapshot(user)
        for name in ("username", "first_name", "last_name", "is_active"):
            if name in given:
                setattr(user, name, getattr(row, name))
        if "email_verified" in given and row.email_verified != user.email_verified:
            user.email_verified_at = now if row.email_verified else None
        if "roles" in given and set(row.roles) != set(user.roles):
            set_roles(s, actor, user, set(row.roles), now=now)
        profile_given = [f for f in PROFILE_FIELDS if f in given]
        if profile_given:
            if user.profile is None:
                user.profile = Profile(**PROFILE_DEFAULTS)
            for name in profile_given:
                value = getattr(row, name)
                setattr(user.profile, name, value or PROFILE_DEFAULTS.get(name, value))
        if deactivate:
            credentials.revoke_sessions(s, user.id, "deactivated", now=now)
        password_changed = bool(pw_hash) and pw_hash != user.password_hash
        if password_changed:
            user.password_hash = pw_hash
            user.password_changed_at = now
        changes = audit.diff(before, snapshot(user))
        if password_changed:
            changes["password"] = "set"
        if changes:
            user.updated_at = now
            s.flush()
            events.append(audit.PendingEvent("user.updated", user.id, changes))
            report.updated += 1
        else:
            report.skipped += 1

    def export_users(
        self,
        actor: Actor,
        *,
        include_deleted: bool = False,
        include_password_hash: bool = False,
        ctx: RequestContext | None = None,
        batch: int = 2000,
    ) -> Iterator[dict[str, Any]]:
        """One flat record per user, oldest first, with constant memory.

        The permission is checked (and an export with password hashes audited,
        ``users.exported``) here, before the first record is read: a face learns
        of a refusal before it starts writing.
        """
        actor.require_admin("users:read")
        if include_password_hash:
            with self.db.write() as s:
                self.record_event(
                    s,
                    actor,
                    ctx or RequestContext(),
                    "users.exported",
                    None,
                    {"include_password_hash": True, "include_deleted": include_deleted},
                )
        return self._export_rows(include_deleted, include_password_hash, batch)

    def _export_rows(
        self, include_deleted: bool, include_password_hash: bool, batch: int
    ) -> Iterator[dict[str, Any]]:
        fields = EXPORT_FIELDS + (["password_hash"] if include_password_hash else [])
        last_created, last_id = None, None
        while True:
            with self.db.read() as s:
                stmt = select(
                    User.id,
                    User.email,
                    User.username,
                    User.first_name,
                    User.last_name,
                    User.is_active,
                    User.email_verified_at,
                    User.created_at,
                    User.last_login_at,
                    User.deleted_at,
                    User.password_hash,
                    *(getattr(Profile, f) for f in PROFILE_FIELDS),
                ).outerjoin(Profile, Profile.user_id == User.id)
                if not include_deleted:
                    stmt = stmt.where(User.deleted_at.is_(None))
                if last_id is not None:
                    stmt = stmt.where(
                        (User.created_at > last_created)
                        | ((User.created_at == last_created) & (User.id > last_id))
                    )
                rows = s.execute(stmt.order_by(User.created_at, User.id).limit(batch)).all()
                ids = [r.id for r in rows]
                roles: dict[uuid.UUID, list[str]] = {}
                if ids:
                    for uid, name in s.execute(
                        select(UserRole.user_id, UserRole.role_name).where(
                            UserRole.user_id.in_(ids)
                        )
                    ):
                        roles.setdefault(uid, []).append(name)
            if not rows:
                return
            for r in rows:
                record = {
                    "id": str(r.id),
                    "email": r.email,
                    "username": r.username,
                    "first_name": r.first_name,
                    "last_name": r.last_name,
                    "roles": sorted(roles.get(r.id, [])),
                    "is_active": r.is_active,
                    "email_verified": r.email_verified_at is not None,
                    **{f: getattr(r, f) for f in PROFILE_FIELDS},
                    "created_at": _iso(r.created_at),
                    "last_login_at": _iso(r.last_login_at),
                    "deleted_at": _iso(r.deleted_at),
                }
                if include_password_hash:
                    record["password_hash"] = r.password_hash
                yield {k: record[k] for k in fields}
            last_created, last_id = rows[-1].created_at, rows[-1].id


def _iso(value) -> str | None:
    if value is None:
        return None
    from datetime import UTC

    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _reason(err: ValidationError) -> str:
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in err.field_errors.items()) or err.message
