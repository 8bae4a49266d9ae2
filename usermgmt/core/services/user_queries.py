"""Listing users: filters, sort, offset pages and opaque keyset cursors.

A keyset cursor encodes the sort key and id of the last row, so page 10,000
costs what page 1 costs. Rows are ordered by (sort column, id); NULLs (only
possible for last_login_at) sort last in both directions.
"""

from __future__ import annotations

import base64
import json
import math
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, exists, func, literal_column, or_, select
from sqlalchemy.orm import Session

from usermgmt.core.errors import ValidationError
from usermgmt.core.models import Profile, User, UserRole, utcnow
from usermgmt.core.schemas import PageMeta, UserPage, UserQuery, user_out

SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "last_login_at": User.last_login_at,
}


# Below this many matches, a filtered SQLite page is cheaper by scan-and-sort.
FEW_MATCHES = 1000


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def user_filters(q: UserQuery) -> list[Any]:
    now = utcnow()
    conds: list[Any] = []
    if not q.include_deleted:
        conds.append(User.deleted_at.is_(None))
    if q.search:
        term = q.search.strip().lower()
        if term:
            conds.append(User.search_text.like(f"%{escape_like(term)}%", escape="\\"))
    if q.role:
        conds.append(exists().where(UserRole.user_id == User.id, UserRole.role_name == q.role))
    if q.status == "active":
        conds += [
            User.is_active.is_(True),
            or_(User.locked_until.is_(None), User.locked_until <= now),
        ]
    elif q.status == "inactive":
        conds.append(User.is_active.is_(False))
    elif q.status == "locked":
        conds.append(User.locked_until > now)
    elif q.status == "unverified":
        conds.append(User.email_verified_at.is_(None))
    return conds


def encode_cursor(sort: str, value: Any, user_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "i": str(user_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != sort:
            raise ValueError("sort differs")
        value = data["v"]
        if value is not None and sort.lstrip("-") in ("created_at", "last_login_at"):
            value = datetime.fromisoformat(value)
        return value, uuid.UUID(data["i"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError):
        raise ValidationError.for_field(
            "cursor", "Invalid cursor (it must come from meta.next_cursor with the same sort)"
        ) from None


def _after(column, descending: bool, value: Any, last_id: uuid.UUID):
    """Rows strictly after (value, last_id) in the (column NULLS LAST, id) order."""
    if value is None:
        return and_(column.is_(None), User.id < last_id if descending else User.id > last_id)
    beyond = column < value if descending else column > value
    same = and_(column == value, User.id < last_id if descending else User.id > last_id)
    return or_(beyond, same, column.is_(None))


def list_users(session: Session, q: UserQuery, dialect: str) -> UserPage:
    descending = q.sort.startswith("-")
    key = q.sort.lstrip("-")
    column = SORT_COLUMNS[key]
    conds = user_filters(q)

    total = session.execute(select(func.count()).select_from(User).where(*conds)).scalar_one()

    order_col, order_id = column, User.id
    if dialect == "sqlite" and q.search and total <= FEW_MATCHES:
        # For a term few rows match, SQLite would walk the whole sort index and look
        # up the table row of each entry (seconds on 100,000 users). Unary + (a no-op
        # in SQLite) keeps the index out: one scan and a small sort. With many
        # matches the index walk stops early, so it is kept.
        order_col = literal_column(f"+users.{column.key}", type_=column.type)
        order_id = literal_column("+users.id", type_=User.id.type)
    stmt = select(User.id, column.label("sort_key")).where(*conds)
    if q.cursor:
        value, last_id = decode_cursor(q.cursor, q.sort)
        stmt = stmt.where(_after(column, descending, value, last_id))
    direction = order_col.desc() if descending else order_col.asc()
    if key == "last_login_at":
        direction = direction.nulls_last()
    stmt = stmt.order_by(direction, order_id.desc() if descending else order_id.asc())
    if not q.cursor:
        stmt = stmt.offset((q.page - 1) * q.limit)
    rows = session.execute(stmt.limit(q.limit + 1)).all()
    has_more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_cursor = None
    if has_more and rows:
        next_cursor = encode_cursor(q.sort, rows[-1].sort_key, rows[-1].id)
    ids = [r.id for r in rows]
    users = _user_outs(session.execute(_USERS_BY_IDS, {"user_ids": ids}).all()) if ids else {}
    return UserPage(
        data=[users[i] for i in ids],
        meta=PageMeta(
            total=total,
            page=None if q.cursor else q.page,
            limit=q.limit,
            total_pages=math.ceil(total / q.limit) if total else 0,
            next_cursor=next_cursor,
        ),
    )


# ---- hot read paths: column queries, no ORM identity map --------------------------
# Reading one user (GET /users/{id}, /auth/me) and checking an access token happen
# on nearly every API request; loading ORM entities (user, joined profile,
# selectin roles) costs several times more than these plain column queries.

_USER_COLUMNS = (
    User.id,
    User.email,
    User.username,
    User.first_name,
    User.last_name,
    User.is_active,
    User.email_verified_at,
    User.locked_until,
    User.last_login_at,
    User.created_at,
    User.updated_at,
    User.deleted_at,
)
_PROFILE_COLUMNS = (
    Profile.phone,
    Profile.bio,
    Profile.avatar_url,
    Profile.timezone,
    Profile.locale,
)
# Built once with a bound parameter, so SQLAlchemy's statement cache key is memoised.
_USER_ROWS = (
    select(*_USER_COLUMNS, *_PROFILE_COLUMNS, UserRole.role_name)
    .outerjoin(Profile, Profile.user_id == User.id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
)
# Built once with bound parameters, so SQLAlchemy's statement cache key is memoised.
_USER_BY_ID = _USER_ROWS.where(User.id == bindparam("user_id", type_=User.id.type))
_USERS_BY_IDS = _USER_ROWS.where(User.id.in_(bindparam("user_ids", expanding=True)))


def _user_outs(rows) -> dict[uuid.UUID, Any]:
    """UserOut per user id from (user, profile, role) rows, one row per role."""
    grouped: dict[uuid.UUID, list] = {}
    for row in rows:
        grouped.setdefault(row.id, []).append(row)
    out = {}
    for user_id, group in grouped.items():
        first = group[0]
        view = SimpleNamespace(**{c.key: getattr(first, c.key) for c in _USER_COLUMNS})
        view.roles = sorted({r.role_name for r in group if r.role_name is not None})
        view.profile = (
            SimpleNamespace(**{c.key: getattr(first, c.key) for c in _PROFILE_COLUMNS})
            if first.timezone is not None
            else None
        )
        out[user_id] = user_out(view)
    return out


def user_out_by_id(conn, user_id: uuid.UUID, *, include_deleted: bool = False):
    """The UserOut of one user in one query, or None (missing, or deleted unless asked).

    ``conn`` is a Connection or a Session (anything with ``execute``).
    """
    rows = conn.execute(_USER_BY_ID, {"user_id": user_id}).all()
    if not rows or (rows[0].deleted_at is not None and not include_deleted):
        return None
    return _user_outs(rows)[rows[0].id]
