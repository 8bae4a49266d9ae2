"""What a database refusal means: one classification of driver errors into domain errors.

Classes (docs/api.md, "Database errors"):

- the database cannot serve now (connection lost or refused, timeouts, a
  read-only or locked database, out of resources) -> ``DatabaseUnavailable``;
- a unique violation -> ``EmailExists``/``UsernameExists`` by the column really
  violated, any other -> ``Conflict``; a foreign key or other integrity
  violation -> ``Conflict``;
- a NULL for a non-null column, a failed check, a value too long for its
  column, any other data error -> ``ValidationError`` naming the field;
- the schema lacks a table or column -> ``SchemaOutOfDate``;
- anything else (a bug) -> ``UnexpectedDatabaseError``.

PostgreSQL errors are read by SQLSTATE and psycopg's diagnostics (constraint,
table, column); SQLite errors by their extended result code name and the
"<table>.<column>" SQLite puts in constraint messages. No message built here
contains SQL or a value.

Every unit of work raises what :func:`translated` makes of a driver error. The
same module decides which failures leave a pooled connection unusable
(:func:`discards_connection`) and guards the declared column lengths, which
SQLite does not enforce (:func:`check_lengths`).
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import String, inspect
from sqlalchemy import exc as sa_exc

from usermgmt.core.errors import (
    Conflict,
    DatabaseBusy,
    DatabaseUnavailable,
    DomainError,
    EmailExists,
    SchemaOutOfDate,
    UnexpectedDatabaseError,
    UsernameExists,
    ValidationError,
)

log = logging.getLogger("usermgmt.db")

# The API names profile fields "profile.<name>"; other tables' columns by name.
_FIELD_PREFIX = {"user_profiles": "profile."}
_UNIQUE_ERRORS: dict[tuple[str, str], type[Conflict]] = {
    ("users", "email"): EmailExists,
    ("users", "username"): UsernameExists,
}

BUSY = "Database is busy; try again"
READ_ONLY = "Database is read-only; try again later"

# PostgreSQL SQLSTATEs (Appendix A of its manual).
_PG_BUSY = {"40001", "40P01", "55P03", "57014"}  # serialization, deadlock, lock/statement timeout
_PG_UNAVAILABLE = {"57P01", "57P02", "57P03", "25006"}  # shutdown, crash, starting, read-only
_PG_UNAVAILABLE_CLASSES = {"08", "53", "58"}  # connection, resources, system (I/O) errors
_PG_SCHEMA = {"42P01", "42703"}  # undefined table, undefined column
# A connection that saw these is of no further use: closed, or read-only for good
# (a session opened while default_transaction_read_only was on, or on a standby).
_PG_DISCARD = {"57P01", "57P02", "57P03", "25006"}

# SQLite extended result code names, by prefix (sqlite3 errors carry them since 3.11).
_SQLITE_BUSY = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_INTERRUPT")
_SQLITE_UNAVAILABLE = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN", "SQLITE_FULL")
# A connection that opened the file read-only stays read-only after the file is
# writable again; one that hit an I/O error or lost its file is suspect too.
_SQLITE_DISCARD = ("SQLITE_READONLY", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_SQLITE_SCHEMA_HINTS = ("no such table", "no such column")
_SQLITE_COLUMN = re.compile(r"constraint failed: (\w+)\.(\w+)")
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)$")

TOO_LONG_ATTR = "usermgmt_too_long"  # (table, column, length), set by note_too_long


def field_name(table: str | None, column: str | None) -> str:
    """The name a client knows a column by: ``email``, ``profile.locale``; else ``body``."""
    if not column:
        return "body"
    return _FIELD_PREFIX.get(table or "", "") + column


def translate_db_error(exc: sa_exc.DBAPIError) -> DomainError:
    """The domain error for a failed statement (see the module's docstring)."""
    orig = getattr(exc, "orig", None)
    postgres = hasattr(orig, "sqlstate")
    error = _from_postgres(exc, orig) if postgres else _from_sqlite(exc, orig)
    if isinstance(error, UnexpectedDatabaseError) and exc.connection_invalidated:
        return DatabaseUnavailable()  # the driver found the connection dead
    return error


@contextmanager
def translated() -> Iterator[None]:
    """Raise driver and pool errors in the block as the domain errors they mean."""
    try:
        yield
    except DomainError:
        raise
    except sa_exc.DBAPIError as exc:
        error = translate_db_error(exc)
        log.warning("database error mapped to %s: %s", error.code, type(exc.orig).__name__)
        log.debug("database error detail", exc_info=exc)
        if isinstance(error, UnexpectedDatabaseError):
            raise error from exc  # a bug: whoever logs it gets the cause (no values in it)
        raise error from None
    except sa_exc.TimeoutError:  # no pooled connection came free in time
        log.warning("database error mapped to SERVICE_UNAVAILABLE: pool timeout")
        raise DatabaseBusy(BUSY) from None


def _from_postgres(exc: sa_exc.DBAPIError, orig: Any) -> DomainError:
    state: str = orig.sqlstate or ""
    diag = orig.diag
    if state == "23505":
        return _unique(*_constraint_column(diag.constraint_name, diag.table_name))
    if state == "23502":
        return ValidationError.for_field(
            field_name(diag.table_name, diag.column_name), "Must not be null"
        )
    if state == "23514":
        table, column = _constraint_column(diag.constraint_name, diag.table_name)
        return ValidationError.for_field(field_name(table, column), "Is not an allowed value")
    if state.startswith("23"):
        return Conflict("The change refers to or conflicts with other data")
    if state == "22001":
        return _too_long(exc)
    if state.startswith("22"):
        return ValidationError.for_field(
            field_name(diag.table_name, diag.column_name), "Is not a valid value"
        )
    if state in _PG_BUSY:
        return DatabaseBusy(BUSY)
    if state == "25006":
        return DatabaseUnavailable(READ_ONLY)
    if state in _PG_UNAVAILABLE or state[:2] in _PG_UNAVAILABLE_CLASSES:
        return DatabaseUnavailable()
    if state in _PG_SCHEMA:
        return SchemaOutOfDate()
    if not state:  # raised by the driver itself, not the server
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return DatabaseUnavailable()  # connection refused, lost, timed out
        if isinstance(exc, sa_exc.DataError):  # e.g. a NUL in a text value
            return ValidationError.for_field("body", "Is not a valid value")
    return _unexpected(orig)


def _from_sqlite(exc: sa_exc.DBAPIError, orig: Any) -> DomainError:
    name: str = getattr(orig, "sqlite_errorname", "") or ""
    message = str(orig)
    lowered = message.lower()
    if name.startswith("SQLITE_CONSTRAINT"):
        match = _SQLITE_COLUMN.search(message)
        table, column = match.groups() if match else (None, None)
        if name in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
            return _unique(table, column)
        if name == "SQLITE_CONSTRAINT_NOTNULL":
            return ValidationError.for_field(field_name(table, column), "Must not be null")
        if name == "SQLITE_CONSTRAINT_CHECK":
            named = _SQLITE_CHECK.search(message)
            table, column = _constraint_column(named and named.group(1), None)
            return ValidationError.for_field(field_name(table, column), "Is not an allowed value")
        return Conflict("The change refers to or conflicts with other data")
    if name.startswith(_SQLITE_BUSY) or "database is locked" in lowered:
        return DatabaseBusy(BUSY)
    if name.startswith("SQLITE_READONLY"):
        return DatabaseUnavailable(READ_ONLY)
    if name.startswith(_SQLITE_UNAVAILABLE):
        return DatabaseUnavailable()
    if any(hint in lowered for hint in _SQLITE_SCHEMA_HINTS):
        return SchemaOutOfDate()
    if isinstance(exc, sa_exc.DataError) or name == "SQLITE_TOOBIG":
        return ValidationError.for_field("body", "Is not a valid value")
    return _unexpected(orig)


def _unique(table: str | None, column: str | None) -> Conflict:
    error = _UNIQUE_ERRORS.get((table or "", column or ""))
    return error() if error else Conflict("The change conflicts with existing data")


def _too_long(exc: sa_exc.DBAPIError) -> ValidationError:
    table, column, length = getattr(exc, TOO_LONG_ATTR, None) or (None, None, None)
    message = f"Must be at most {length} characters" if length else "Is too long"
    return ValidationError.for_field(field_name(table, column), message)


def _unexpected(orig: Any) -> UnexpectedDatabaseError:
    return UnexpectedDatabaseError(f"Unexpected database error ({type(orig).__name__})")


@functools.cache
def _constraints() -> dict[str, tuple[str, str | None]]:
    """Constraint and unique index name -> (table, its single column or None)."""
    from usermgmt.core.models import Base

    found: dict[str, tuple[str, str | None]] = {}
    for table in Base.metadata.tables.values():
        named = [c for c in table.constraints if isinstance(c.name, str)]
        named += [i for i in table.indexes if i.unique and isinstance(i.name, str)]
        for item in named:
            columns = list(item.columns)
            found[item.name] = (table.name, columns[0].name if len(columns) == 1 else None)
    return found


def _constraint_column(constraint: str | None, table: str | None) -> tuple[str | None, str | None]:
    return _constraints().get(constraint or "", (table, None))


# ---- connections that must go ------------------------------------------------------


def discards_connection(error: BaseException) -> bool:
    """True if a connection that raised ``error`` must not be used again.

    The dialect's own ``is_disconnect`` catches closed sockets; this adds what
    it misses: PostgreSQL sessions ended by an administrator or stuck
    read-only, SQLite connections that opened the file read-only (they stay
    so after the file is writable again) or lost it.
    """
    state = getattr(error, "sqlstate", None)
    if state is not None:
        return state in _PG_DISCARD or state[:2] == "08"
    name = getattr(error, "sqlite_errorname", None) or ""
    return name.startswith(_SQLITE_DISCARD)


def note_too_long(context: Any) -> None:
    """On PostgreSQL's "value too long", record which column's value it was.

    The server does not say (SQLSTATE 22001 has no column); the failed
    statement's bound values are checked against their columns' declared
    lengths, and the first too-long one is kept on the raised exception for
    :func:`translate_db_error`.
    """
    wrapped = context.sqlalchemy_exception
    ctx = context.execution_context
    compiled = getattr(ctx, "compiled", None)
    table = getattr(getattr(compiled, "statement", None), "table", None)
    if wrapped is None or table is None:
        return
    for params in ctx.compiled_parameters or ():
        for name, bind in compiled.binds.items():
            length = getattr(bind.type, "length", None)
            value = params.get(name)
            if length and isinstance(value, str) and len(value) > length:
                column = table.c.get(name)  # a column's value is bound under its key
                column_name = column.name if column is not None else None
                setattr(wrapped, TOO_LONG_ATTR, (table.name, column_name, length))
                return


# ---- declared lengths, enforced on SQLite too ----------------------------------------


@functools.cache
def _bounded_columns(mapper: Any) -> tuple[tuple[str, str, str, int], ...]:
    """(attribute, table, column, length) of each length-limited string column."""
    return tuple(
        (prop.key, column.table.name, column.name, column.type.length)
        for prop in mapper.column_attrs
        for column in prop.columns
        if isinstance(column.type, String) and column.type.length
    )


def check_lengths(session: Any, _flush_context: Any, _instances: Any) -> None:
    """Refuse a flush that would store a string longer than its column allows.

    PostgreSQL refuses such a value itself; SQLite stores it whole, so the
    same input would be accepted on one database and refused on the other.
    A ``before_flush`` hook: one check for both, naming the field. Only the
    values a flush writes are checked (all of a new row, the changed ones of
    an existing row), so an old value never blocks an unrelated change.
    """
    for obj in itertools.chain(session.new, session.dirty):
        state = inspect(obj)
        values = obj.__dict__
        changed = None if state.key is None else state.committed_state
        for key, table, column, length in _bounded_columns(state.mapper):
            if changed is not None and key not in changed:
                continue
            value = values.get(key)
            if isinstance(value, str) and len(value) > length:
                raise ValidationError.for_field(
                    field_name(table, column), f"Must be at most {length} characters"
                )
