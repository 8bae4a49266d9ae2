"""Listing users: filters, sort, offset pages and opaque keyset cursors.

A keyset cursor encodes the sort key and id of the last row, so page 10,000
costs what page 1 costs. Rows are ordered by (sort column, id); NULL keys
(last_login_at, username) sort as ``nulls_last`` says.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    Text,
    and_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.orm import Session

from usermgmt.core import search_index
from usermgmt.core.db import reader_of
from usermgmt.core.errors import ValidationError
from usermgmt.core.models import Profile, User, UserCounts, UserRole, UserSearch, utcnow
from usermgmt.core.schemas import PageMeta, UserOut, UserPage, UserQuery, UserRows, user_out
from usermgmt.core.search_index import escape_like

SORT_COLUMNS = {
    "created_at": User.created_at,
    "email": User.email,
    "username": User.username,
    "last_login_at": User.last_login_at,
}


def search_term(q: UserQuery) -> str | None:
    """The normalised search term of ``q``, or None when there is nothing to search for."""
    return (q.search or "").strip().lower() or None


def _contains(column, term: str):
    """``column`` contains ``term`` (LIKE with the wildcards in ``term`` escaped).

    The pattern is written into the SQL text at execution time (the compiled
    statement is still cached): as a bound parameter, PostgreSQL switches a
    prepared statement to a generic plan after five runs, and a generic plan
    that trusts the trigram index walks all of it for a one-letter term (1.1 s
    at a million users, against 80 ms for the scan the pattern's own plan picks).
    """
    pattern = bindparam("search", f"%{escape_like(term)}%", Text, unique=True, literal_execute=True)
    return column.like(pattern, escape="\\")


def user_filters(
    q: UserQuery, matches: list[uuid.UUID] | None = None, *, search_copy: bool = True
) -> list[Any]:
    """The WHERE conditions for ``q``; ``matches``, when given, are the search's ids.

    A search of live users goes through the narrow ``user_search`` copy unless
    ``search_copy`` is false: a page that walks the users table in sort order
    has each row in hand, and testing its own ``search_text`` saves a probe of
    the copy per row walked (4,600 of 5,900 buffers for ``smith``'s first page;
    on SQLite the copy's whole match set would be built before the first row).
    """
    now = utcnow()
    conds: list[Any] = []
    if not q.include_deleted:
        conds.append(User.deleted_at.is_(None))
    term = search_term(q)
    if term and matches is not None:
        conds.append(User.id.in_(matches))
    elif term and (q.include_deleted or not search_copy):
        conds.append(_contains(User.search_text, term))
    elif term:  # live users only: the narrow copy (migration 0005) is what's scanned
        # IN: SQLite gathers the copy's matches first (a scan of the narrow table)
        # and probes users by key; PostgreSQL plans it as a semi-join.
        conds.append(
            User.id.in_(select(UserSearch.user_id).where(_contains(UserSearch.search_text, term)))
        )
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


BAD_CURSOR = "Invalid cursor (it must come from meta.next_cursor with the same sort)"


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
        column = SORT_COLUMNS[sort.lstrip("-")]
        value = data["v"]
        if value is None:
            if not column.nullable:
                raise ValueError("a value is required")
        elif isinstance(column.type, String):
            value = _cursor_text(value, column.type.length)
        else:
            value = _cursor_instant(value)
        if not isinstance(data["i"], str):
            raise ValueError("the id is not a string")
        return value, uuid.UUID(data["i"])
    except (ValueError, OverflowError):  # binascii, JSON, Unicode and uuid errors included
        raise ValidationError.for_field("cursor", BAD_CURSOR) from None


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

    last_login_at puts them last both ways (``_order``). A username keeps each
    database's own order, which its index serves and which reverses exactly
    with the sort: PostgreSQL ranks NULL above every value, SQLite below.
    """
    if key == "last_login_at":
        return True
    return descending == (dialect == "sqlite")


def _after(column, descending: bool, value: Any, last_id: uuid.UUID, nulls_last: bool):
    """Rows strictly after (value, last_id) in the (column, id) order, NULLs where
    ``nulls_last`` says.

    A column that is never NULL gets a row-value comparison, which both
    databases answer with one index range scan; an OR with ``IS NULL`` would
    make PostgreSQL filter its way through every earlier row instead.
    """
    if not column.nullable:
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


def count_users(session: Session, q: UserQuery, matches: list[uuid.UUID] | None = None) -> int:
    """How many users match the filters of ``q`` (its page, cursor and sort are ignored).

    An unfiltered count reads the trigger-kept counts instead of counting rows,
    a search of live users counts in the narrow ``user_search`` copy alone, or
    is the number of ``matches`` already gathered.
    """
    term = search_term(q)
    if not term and not q.role and not q.status:
        counts = session.get(UserCounts, 1)
        if counts is not None:
            return counts.live + (counts.deleted if q.include_deleted else 0)
    if term and not q.role and not q.status and not q.include_deleted:
        if matches is not None:
            return len(matches)
        stmt = select(func.count()).where(_contains(UserSearch.search_text, term))
        return session.execute(stmt).scalar_one()
    stmt = select(func.count()).select_from(User).where(*user_filters(q, matches))
    return session.execute(stmt).scalar_one()


# Walking the sort index and filtering is fast while matches are common; when an
# index walk would visit more rows than this to fill a page, the matches are
# gathered by one scan and sorted instead (a rare short term no trigram serves).
WALK_LIMIT = 50_000

# A term shorter than a trigram gets no help from the index: finding its matches
# is a scan of user_search (~80 ms at a million users). One scan that stops after
# GATHER_LIMIT + 1 matches either finds them all (a rare term: that list is the
# search, so counting and paging it costs next to nothing more) or proves the term
# common (stopping early; it is then counted by a scan and its page walked).
GATHER_LIMIT = 5_000
# SQLite's trigram index (search_index) gathers a longer term's matches the same
# way: 0.1-2 ms for a rare term at 100,000 users, against a 7-14 ms scan of the
# copy. A common term is still counted by that scan and its page walked: the
# index would read every match's positions, which is slower than the scan (30 ms
# against 11 ms for a term in every row). So the index stops early, past
# INDEX_GATHER_LIMIT matches, which costs a common term ~0.3 ms more than before.
INDEX_GATHER_LIMIT = 250


def gather_matches(
    session: Session, q: UserQuery, *, index_only: bool = False
) -> list[uuid.UUID] | None:
    """All ids matching a search of live users, if there are few and finding them is cheap.

    A term of three characters or more: from SQLite's trigram index, or on
    PostgreSQL by the inlined pattern (its trigram index or a scan, as its
    planner picks), up to INDEX_GATHER_LIMIT. A term of one or two characters:
    by a scan of the copy up to GATHER_LIMIT. ``index_only`` allows SQLite's
    index alone. None when the term is common, or nothing may be tried.
    """
    term = search_term(q)
    if not term or q.include_deleted:
        return None
    if search_index.serves(session, term):
        limit = INDEX_GATHER_LIMIT
        stmt, params = search_index.matching_ids(term, limit + 1)
        ids = list(reader_of(session).execute(stmt, params).scalars())
    elif index_only:
        return None
    elif len(term) < search_index.MIN_TERM or session.get_bind().dialect.name == "postgresql":
        # PostgreSQL plans the inlined pattern by its statistics (see _contains): a
        # rare term is read from the trigram index, a common one is scanned and the
        # scan stops at the limit (0.2 ms for a term in every row).
        limit = GATHER_LIMIT if len(term) < search_index.MIN_TERM else INDEX_GATHER_LIMIT
        stmt = select(UserSearch.user_id).where(_contains(UserSearch.search_text, term))
        # The limit is written into the SQL too: the plan depends on it.
        cap = bindparam("cap", limit + 1, Integer, literal_execute=True)
        ids = list(session.execute(stmt.limit(cap)).scalars())
    else:
        return None
    return ids if len(ids) <= limit else None


def page_rows(
    session: Session,
    q: UserQuery,
    dialect: str,
    total: int | None = None,
    skip: int = 0,
    matches: list[uuid.UUID] | None = None,
) -> tuple[list[UserOut], str | None]:
    """One page of matching users and the cursor of the next page (None at the end).

    ``total``, when the caller knows it, picks the plan: no query when nothing
    matches, one scan and a sort when matches are rare. ``skip`` passes over that
    many more rows first (after the cursor, or after the page's offset).
    ``matches`` are the search's ids when already gathered.

    The page is found as (id, sort key) pairs alone (an index walk, which also
    skips an offset cheaply), then its users are read by one column query
    (``users_out_by_ids``): loading ORM entities with their profiles and roles
    cost more than the search that found them.
    """
    descending = q.sort.startswith("-")
    key = q.sort.lstrip("-")
    column = SORT_COLUMNS[key]
    after = []
    if q.cursor:  # decoded first: a bad cursor is an error even when nothing matches
        value, last_id = decode_cursor(q.cursor, q.sort)
        last = nulls_last(key, descending, dialect)
        after.append(_after(column, descending, value, last_id, last))
    if total == 0:
        return [], None
    offset = skip + (0 if q.cursor else (q.page - 1) * q.limit)
    constant = _constant_page(q, matches) if not after else None
    if constant is not None:
        stmt, params = constant
        params.update(limit=q.limit + 1, offset=offset)
        found = reader_of(session).execute(stmt, params)
    else:
        stmt = select(User.id, column)
        # (Unfiltered, the total is everyone: never rare.)
        if matches is None and total is not None and _rare(session, q, total):
            gathered = _materialized_matches([*user_filters(q), *after], dialect)
            stmt = stmt.where(User.id.in_(select(gathered.c.id)))
        else:
            stmt = stmt.where(*user_filters(q, matches, search_copy=False), *after)
        stmt = stmt.order_by(*_order(q.sort))
        if offset:
            stmt = stmt.offset(offset)
        found = session.execute(stmt.limit(q.limit + 1)).all()
    has_more = len(found) > q.limit
    found = found[: q.limit]
    next_cursor = None
    if has_more and found:
        last_id, last_value = found[-1]
        next_cursor = encode_cursor(q.sort, last_value, last_id)
    return users_out_by_ids(session, [row[0] for row in found]), next_cursor


def _order(sort: str) -> tuple[Any, Any]:
    """The ORDER BY of ``sort``: its column (NULLs last), then id in the same direction."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = SORT_COLUMNS[key]
    direction = column.desc() if descending else column.asc()
    if key == "last_login_at":
        direction = direction.nulls_last()
    return direction, User.id.desc() if descending else User.id.asc()


# Up to this many ids (gathered matches, a page's users) are bound one parameter
# each, in a constant statement per bucket size (the ids padded with a repeat of
# the last): such statements run precompiled (db.Plan), where an expanding IN is
# rendered and executed by SQLAlchemy anew each time (~300 µs for a page).
ID_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _id_params(ids: list[uuid.UUID]) -> tuple[int, dict[str, Any]]:
    """The bucket size for ``ids`` (at most ID_BUCKETS[-1]) and their parameters."""
    size = next(b for b in ID_BUCKETS if b >= len(ids))
    padded = [*ids, *[ids[-1]] * (size - len(ids))]
    return size, {f"id{i}": value for i, value in enumerate(padded)}


def _id_binds(size: int) -> list[Any]:
    return [bindparam(f"id{i}", type_=User.id.type) for i in range(size)]


def _constant_page(q: UserQuery, matches: list[uuid.UUID] | None):
    """The constant statement and parameters of ``q``'s page (no cursor), if it has one:
    for gathered matches of a search, or for everyone (no filter at all)."""
    if q.role or q.status:
        return None
    if matches and len(matches) <= ID_BUCKETS[-1]:
        size, params = _id_params(matches)
        return _page_statement(q.sort, size, include_deleted=False), params
    if matches is None and not search_term(q):
        return _page_statement(q.sort, 0, include_deleted=q.include_deleted), {}
    return None


@functools.cache
def _page_statement(sort: str, size: int, *, include_deleted: bool):
    """(id, sort key) of a page in ``sort`` order (limit, offset parameters): of
    everyone, or (``size`` > 0) among that many ids."""
    conds = [] if include_deleted else [User.deleted_at.is_(None)]
    if size:
        conds.append(User.id.in_(_id_binds(size)))
    return (
        select(User.id, SORT_COLUMNS[sort.lstrip("-")])
        .where(*conds)
        .order_by(*_order(sort))
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )


def _rare(session: Session, q: UserQuery, total: int) -> bool:
    counts = session.get(UserCounts, 1)
    population = (counts.live + counts.deleted) if counts else total
    return population * (q.limit + 1) / total > WALK_LIMIT


def _materialized_matches(conds: list[Any], dialect: str):
    """The matching ids gathered by one scan, so the page sorts them instead of walking."""
    matches = select(User.id).where(*conds).cte("matches")
    if dialect == "postgresql":
        matches = matches.prefix_with("MATERIALIZED")
    return matches


def list_users(
    session: Session, q: UserQuery, dialect: str, matches: list[uuid.UUID] | None
) -> UserPage:
    """A page and its total; ``matches``: what ``gather_matches`` found for ``q``."""
    total = count_users(session, q, matches)
    users, next_cursor = page_rows(session, q, dialect, total, matches=matches)
    return user_page(q, total, users, next_cursor)


def count_alongside(q: UserQuery) -> bool:
    """Whether the count of ``q`` may run on connections of its own while its page is read.

    For a trigram-served search of live users and nothing else: the page's plan
    does not need the total (the planner's estimate picks walk or gather), and
    the count is the long part (``smith``: 16-26 ms against a 2 ms page).
    PostgreSQL runs it as one count per partition of the copy (``SEARCH_HALVES``,
    migration 0008), each on its own backend. Under READ COMMITTED each
    statement sees its own snapshot anyway, so one transaction bought no more
    consistency than this.
    """
    term = search_term(q)
    return bool(term) and len(term) >= 3 and not (q.role or q.status or q.include_deleted)


# The two partitions of user_search on PostgreSQL (migration 0008), as conditions
# the planner prunes by: each count of a half reads one partition and its index.
# Built once with bound parameters, so the hot path runs them precompiled
# (usermgmt.core.db.Plan). A prepared statement may then get PostgreSQL's generic
# plan, which is the trigram bitmap scan: right for every term this path takes
# (three characters or more; see count_alongside).
_MIDPOINT = uuid.UUID("80000000-0000-0000-0000-000000000000")
_PATTERN = bindparam("pattern", type_=Text)
_BOUND = bindparam("midpoint", type_=UserSearch.user_id.type)
SEARCH_HALVES = (UserSearch.user_id < _BOUND, UserSearch.user_id >= _BOUND)
_COUNT_HALVES = tuple(
    select(func.count()).where(UserSearch.search_text.like(_PATTERN, escape="\\"), condition)
    for condition in SEARCH_HALVES
)


def count_search_half(conn, q: UserQuery, half: int) -> int:
    """How many live users in half ``half`` (0 or 1) of the copy match ``q``'s search.

    ``conn`` is a Session or a Reader (anything with ``execute``).
    """
    term = search_term(q)
    if not term:
        raise ValueError("a half count is for a search")
    params = {"pattern": f"%{escape_like(term)}%", "midpoint": _MIDPOINT}
    return conn.execute(_COUNT_HALVES[half], params).scalar_one()


def user_page(q: UserQuery, total: int, users: list[UserOut], next_cursor: str | None) -> UserPage:
    return UserPage(
        data=users,
        meta=PageMeta(
            total=total,
            page=None if q.cursor else q.page,
            limit=q.limit,
            total_pages=math.ceil(total / q.limit) if total else 0,
            next_cursor=next_cursor,
        ),
    )


def list_rows(
    session: Session, q: UserQuery, dialect: str, total: int | None = None, skip: int = 0
) -> UserRows:
    """A page without the COUNT: for clients that page on and count once per filter.

    A term SQLite's trigram index serves is gathered first, as in ``list_users``
    (not a short term's scan: with a known total that page may need no query),
    unless ``total`` already says the index would give up.
    """
    matches = None
    if total is None or 0 < total <= INDEX_GATHER_LIMIT:
        matches = gather_matches(session, q, index_only=True)
    users, next_cursor = page_rows(session, q, dialect, total, skip, matches=matches)
    return UserRows(data=users, next_cursor=next_cursor)


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
# Built once with bound parameters, so SQLAlchemy's statement cache key is memoised.
_USERS_BY_ID = (
    select(*_USER_COLUMNS, *_PROFILE_COLUMNS, UserRole.role_name)
    .outerjoin(Profile, Profile.user_id == User.id)
    .outerjoin(UserRole, UserRole.user_id == User.id)
)
_USER_BY_ID = _USERS_BY_ID.where(User.id == bindparam("user_id", type_=User.id.type))
_USERS_IN = _USERS_BY_ID.where(User.id.in_(bindparam("user_ids", expanding=True)))


@functools.cache
def _users_in(size: int):
    """The rows of ``size`` given users (see ID_BUCKETS)."""
    return _USERS_BY_ID.where(User.id.in_(_id_binds(size)))


def _view(rows) -> UserOut:
    """The UserOut of one user from its joined rows (one per role, at least one)."""
    first = rows[0]
    view = SimpleNamespace(**{c.key: getattr(first, c.key) for c in _USER_COLUMNS})
    view.roles = sorted({r.role_name for r in rows if r.role_name is not None})
    view.profile = (
        SimpleNamespace(**{c.key: getattr(first, c.key) for c in _PROFILE_COLUMNS})
        if first.timezone is not None
        else None
    )
    return user_out(view)


def user_out_by_id(conn, user_id: uuid.UUID, *, include_deleted: bool = False):
    """The UserOut of one user in one query, or None (missing, or deleted unless asked).

    ``conn`` is a Connection or a Session (anything with ``execute``).
    """
    rows = conn.execute(_USER_BY_ID, {"user_id": user_id}).all()
    if not rows or (rows[0].deleted_at is not None and not include_deleted):
        return None
    return _view(rows)


def users_out_by_ids(conn, user_ids: list[uuid.UUID]) -> list[UserOut]:
    """The UserOut of each of ``user_ids`` that exists, in that order, in one query."""
    if not user_ids:
        return []
    if isinstance(conn, Session):
        conn = reader_of(conn)
    if len(user_ids) <= ID_BUCKETS[-1]:
        size, params = _id_params(user_ids)
        stmt = _users_in(size)
    else:
        stmt, params = _USERS_IN, {"user_ids": user_ids}
    by_id: dict[uuid.UUID, list] = {}
    for row in conn.execute(stmt, params):
        by_id.setdefault(row.id, []).append(row)
    return [_view(by_id[i]) for i in user_ids if i in by_id]
