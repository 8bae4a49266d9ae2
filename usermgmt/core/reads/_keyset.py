"""Keyset paging: opaque cursors and the rows strictly after one.

A cursor encodes the sort key and id of the last row of a page, so page 10,000
costs what page 1 costs. Rows are ordered by (sort column, id); NULL keys
(last_login_at, username) sort as :func:`nulls_last` says.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, and_, literal, or_, tuple_

from usermgmt.core.errors import ValidationError
from usermgmt.core.models import User
from usermgmt.core.reads._filters import (
    NAME_KEY_LENGTH,
    SORT_COLUMNS,
    STATUS_KEY_LENGTH,
    sort_key,
)

BAD_CURSOR = "Invalid cursor (it must come from meta.next_cursor with the same sort)"


def encode_cursor(sort: str, value: Any, user_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "i": str(user_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, uuid.UUID]:
    """The (sort key, id) a cursor of ``sort`` holds; any other cursor is a ValidationError.

    A cursor is client input: every part is checked before it reaches a
    statement (the value's type for the sort's column, its length, a lone
    surrogate or NUL no driver could send, a time out of range), so an edited
    cursor is a 400 rather than a database error.
    """
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        data = json.loads(base64.b64decode(padded, altchars=b"-_", validate=True))
        if not isinstance(data, dict) or data.keys() != {"s", "v", "i"} or data["s"] != sort:
            raise ValueError("not a cursor of this sort")
        nullable, text_length = _key_kind(sort.lstrip("-"))
        value = data["v"]
        if value is None:
            if not nullable:
                raise ValueError("a value is required")
        elif text_length is not None:
            value = _cursor_text(value, text_length)
        else:
            value = _cursor_instant(value)
        if not isinstance(data["i"], str):
            raise ValueError("the id is not a string")
        return value, uuid.UUID(data["i"])
    except (ValueError, OverflowError):  # binascii, JSON, Unicode and uuid errors included
        raise ValidationError.for_field("cursor", BAD_CURSOR) from None


def _key_kind(key: str) -> tuple[bool, int | None]:
    """Whether sort ``key`` may be NULL, and the longest text it holds (None: a time)."""
    if key == "name":
        return False, NAME_KEY_LENGTH
    if key == "status":
        return False, STATUS_KEY_LENGTH
    column = SORT_COLUMNS[key]
    return column.nullable, column.type.length if isinstance(column.type, String) else None


def _cursor_text(value: Any, length: int) -> str:
    if not isinstance(value, str) or len(value) > length or "\x00" in value:
        raise ValueError("not a text key")
    value.encode("utf-8")  # a lone surrogate raises here, not in the driver
    return value


def _cursor_instant(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a time")
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError("a time without its zone")
    return when.astimezone(UTC)  # OverflowError near year 1 or 9999


def nulls_last(key: str, descending: bool, dialect: str) -> bool:
    """Whether rows with a NULL ``key`` come after all others in the page order.

    last_login_at puts them last both ways (``_filters.order``). A username keeps
    each database's own order, which its index serves and which reverses
    exactly with the sort: PostgreSQL ranks NULL above every value, SQLite below.
    """
    if key == "last_login_at":
        return True
    return descending == (dialect == "sqlite")


def after(sort: str, cursor: str, dialect: str, now: Any):
    """The condition for rows strictly after ``cursor`` in ``sort`` order (``now``: the
    present of a status order)."""
    value, last_id = decode_cursor(cursor, sort)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    nullable = _key_kind(key)[0]
    return _after(
        sort_key(key, now),
        descending,
        value,
        last_id,
        nulls_last(key, descending, dialect),
        nullable=nullable,
    )


def _after(
    column,
    descending: bool,
    value: Any,
    last_id: uuid.UUID,
    nulls_last: bool,
    *,
    nullable: bool,
):
    """Rows strictly after (value, last_id) in the (column, id) order, NULLs where
    ``nulls_last`` says.

    A column that is never NULL gets a row-value comparison, which both
    databases answer with one index range scan; an OR with ``IS NULL`` would
    make PostgreSQL filter its way through every earlier row instead.
    """
    if not nullable:
        key = tuple_(column, User.id)
        bound = tuple_(literal(value, column.type), literal(last_id, User.id.type))
        return key < bound if descending else key > bound
    id_beyond = User.id < last_id if descending else User.id > last_id
    if value is None:
        same = and_(column.is_(None), id_beyond)
        return same if nulls_last else or_(same, column.is_not(None))
    beyond = column < value if descending else column > value
    same = and_(column == value, id_beyond)
    return or_(beyond, same, column.is_(None)) if nulls_last else or_(beyond, same)
