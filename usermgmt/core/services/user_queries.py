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
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from usermgmt.core.errors import ValidationError
from usermgmt.core.models import User, UserRole, utcnow
from usermgmt.core.schemas import PageMeta, UserPage, UserQuery, user_out

SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "last_login_at": User.last_login_at,
}


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


def page_rows(session: Session, q: UserQuery) -> tuple[list[User], str | None]:
    """One page of users in ``q``'s order, and the cursor of the next page (None at the end)."""
    descending = q.sort.startswith("-")
    key = q.sort.lstrip("-")
    column = SORT_COLUMNS[key]
    stmt = select(User).where(*user_filters(q))
    if q.cursor:
        value, last_id = decode_cursor(q.cursor, q.sort)
        stmt = stmt.where(_after(column, descending, value, last_id))
    direction = column.desc() if descending else column.asc()
    if key == "last_login_at":
        direction = direction.nulls_last()
    stmt = stmt.order_by(direction, User.id.desc() if descending else User.id.asc())
    if not q.cursor:
        stmt = stmt.offset((q.page - 1) * q.limit)
    rows = list(session.execute(stmt.limit(q.limit + 1)).unique().scalars())
    has_more = len(rows) > q.limit
    rows = rows[: q.limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        next_cursor = encode_cursor(q.sort, getattr(last, key), last.id)
    return rows, next_cursor


def list_users(session: Session, q: UserQuery, dialect: str) -> UserPage:
    conds = user_filters(q)
    total = session.execute(select(func.count()).select_from(User).where(*conds)).scalar_one()
    rows, next_cursor = page_rows(session, q)
    return UserPage(
        data=[user_out(u) for u in rows],
        meta=PageMeta(
            total=total,
            page=None if q.cursor else q.page,
            limit=q.limit,
            total_pages=math.ceil(total / q.limit) if total else 0,
            next_cursor=next_cursor,
        ),
    )
