"""Users as the faces see them (UserOut), read by plain column queries.

Reading one user (GET /users/{id}, /auth/me) happens on nearly every API
request, and a page's users on every list: one joined column query per call,
with no ORM identity map, costs a fraction of loading entities (user, joined
profile, selectin roles).
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from types import SimpleNamespace

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from usermgmt.core.db.precompiled import reader_of
from usermgmt.core.models import Profile, User, UserRole
from usermgmt.core.reads._id_buckets import IdBuckets, id_binds
from usermgmt.core.schemas import UserOut, user_out

_USER_COLUMNS = (
    User.id,
    User.email,
    User.username,
    User.kind,
    User.mfa_enabled,
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
# Built once with bound parameters: constant statements, which run precompiled.
_USERS_BY_ID = (
    select(*_USER_COLUMNS, *_PROFILE_COLUMNS, UserRole.role_name)
    .outerjoin(Profile, Profile.user_id == User.id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
)
_USER_BY_ID = _USERS_BY_ID.where(User.id == bindparam("user_id", type_=User.id.type))
_USERS_IN = _USERS_BY_ID.where(User.id.in_(bindparam("user_ids", expanding=True)))


@functools.cache
def _users_in(size: int):
    """The rows of ``size`` given users (an id bucket)."""
    return _USERS_BY_ID.where(User.id.in_(id_binds(size)))


def _view(rows, now: datetime) -> UserOut:
    """The UserOut (status at ``now``) of one user from its joined rows (one per role, at
    least one)."""
    first = rows[0]
    view = SimpleNamespace(**{c.key: getattr(first, c.key) for c in _USER_COLUMNS})
    view.roles = sorted({r.role_name for r in rows if r.role_name is not None})
    view.profile = (
        SimpleNamespace(**{c.key: getattr(first, c.key) for c in _PROFILE_COLUMNS})
        if first.timezone is not None
        else None
    )
    return user_out(view, now)


def user_out_by_id(
    conn, user_id: uuid.UUID, now: datetime, *, include_deleted: bool = False
) -> UserOut | None:
    """The UserOut of one user (status at ``now``) in one query, or None (missing, or
    deleted unless asked).

    ``conn`` is a Reader, a Connection or a Session (anything with ``execute``).
    """
    rows = conn.execute(_USER_BY_ID, {"user_id": user_id}).all()
    if not rows or (rows[0].deleted_at is not None and not include_deleted):
        return None
    return _view(rows, now)


def users_out_by_ids(
    conn, user_ids: list[uuid.UUID], buckets: IdBuckets, now: datetime
) -> list[UserOut]:
    """The UserOut (status at ``now``) of each of ``user_ids`` that exists, in that order,
    in one query."""
    if not user_ids:
        return []
    if isinstance(conn, Session):
        conn = reader_of(conn)
    if buckets.fit(user_ids):
        size, params = buckets.params(user_ids)
        stmt = _users_in(size)
    else:
        stmt, params = _USERS_IN, {"user_ids": user_ids}
    by_id: dict[uuid.UUID, list] = {}
    for row in conn.execute(stmt, params):
        by_id.setdefault(row.id, []).append(row)
    return [_view(by_id[i], now) for i in user_ids if i in by_id]
