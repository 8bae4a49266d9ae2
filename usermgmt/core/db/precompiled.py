"""Constant SELECTs compiled once per database and run on the driver's cursor.

The hot reads (the token check, users by id, a page of gathered matches) are
constant statements with bound parameters. A :class:`Plan` compiles such a
statement once, with SQLAlchemy's own compiler and type processors, and runs
it on the driver's cursor, skipping SQLAlchemy's per-execution work (cache
lookup, execution context, events, result metadata). Rows have the attributes
of SQLAlchemy's rows; errors are wrapped and classified as SQLAlchemy's are.
"""

from __future__ import annotations

import keyword
import threading
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from usermgmt.core.db.engine import is_disconnect

if TYPE_CHECKING:
    from usermgmt.core.db.database import Database

# Plans are kept for constant statements only (module-level ones, one per sort and
# id bucket of the read model: under a hundred), so the bound is a safety net.
PLAN_CACHE_SIZE = 512
# Where a session made by a Database keeps it (see reader_of).
DATABASE_KEY = "usermgmt.database"


class Rows(list):
    """The rows of a planned read, with the usual methods of SQLAlchemy's Result."""

    def all(self) -> list:
        return list(self)

    def first(self):
        return self[0] if self else None

    def one_or_none(self):
        if len(self) > 1:
            raise sa_exc.MultipleResultsFound("Multiple rows where one or none was required")
        return self.first()

    def one(self):
        if not self:
            raise sa_exc.NoResultFound("No row was found when one was required")
        return self.one_or_none()

    def scalar(self):
        return self[0][0] if self else None

    def scalar_one(self):
        return self.one()[0]

    def scalar_one_or_none(self):
        row = self.one_or_none()
        return None if row is None else row[0]

    def scalars(self) -> Rows:
        return Rows(row[0] for row in self)

    def mappings(self) -> Rows:
        return Rows(row._asdict() for row in self)


class Plan:
    """A SELECT compiled for one dialect: its SQL, parameter order, row type and processors."""

    __slots__ = ("binds", "defaults", "names", "processors", "row", "sql")

    def __init__(self, stmt: Select, dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("statement renders parameters at execution time")
        keys = list(stmt.selected_columns.keys())
        if len(set(keys)) != len(keys) or not all(_field_name(k) for k in keys):
            raise ValueError("column keys are not distinct identifiers")
        self.sql = compiled.string
        escaped = compiled.escaped_bind_names or {}
        self.names = tuple(compiled.positiontup) if dialect.positional else None
        self.binds: dict[str, Callable | None] = {}
        self.defaults: dict[str, object] = {}  # values bound in the statement itself
        for name, bind in compiled.binds.items():
            if bind.callable is not None:
                raise ValueError("a parameter's value is computed at execution time")
            key = escaped.get(name, name)
            self.binds[key] = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if not bind.required:
                self.defaults[key] = bind.value
        self.row = namedtuple("Row", keys)
        self.processors = tuple(
            (i, processor)
            for i, column in enumerate(stmt.selected_columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )

    def parameters(self, given: Mapping | None):
        """The driver's parameters: a tuple (positional) or a dict (named)."""
        values = {**self.defaults, **given} if given else dict(self.defaults)
        for name, processor in self.binds.items():
            if name not in values:
                raise sa_exc.InvalidRequestError(f"A value is required for parameter {name!r}")
            if processor is not None and values[name] is not None:
                values[name] = processor(values[name])
        if self.names is not None:
            return tuple(values[name] for name in self.names)
        return values

    def run(self, conn: Connection, given: Mapping | None) -> Rows:
        params = self.parameters(given)
        dialect = conn.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        fairy = conn.connection
        cursor = None
        try:
            cursor = fairy.cursor()
            try:
                cursor.execute(self.sql, params)
                raw = cursor.fetchall()
            finally:
                cursor.close()
        except dbapi_error as exc:
            invalidated = is_disconnect(dialect, exc, fairy.dbapi_connection, cursor)
            if invalidated:
                conn.invalidate(exc)
            raise sa_exc.DBAPIError.instance(
                self.sql,
                params,
                exc,
                dbapi_error,
                connection_invalidated=invalidated,
                dialect=dialect,
            ) from exc
        make, processors = self.row._make, self.processors
        if not processors:
            return Rows(map(make, raw))
        rows = Rows()
        for values in raw:
            values = list(values)
            for i, processor in processors:
                value = values[i]
                if value is not None:  # every type here reads NULL as None
                    values[i] = processor(value)
            rows.append(make(values))
        return rows


def _field_name(key: str) -> bool:
    return key.isidentifier() and not key.startswith("_") and not keyword.iskeyword(key)


class Plans:
    """The plans of one database, by statement, made on first use."""

    def __init__(self, dialect) -> None:
        self._dialect = dialect
        # By statement identity; the statement is kept so its id stays unique.
        self._plans: dict[int, tuple[Select, Plan | None]] = {}
        self._lock = threading.Lock()

    def get(self, stmt: Select) -> Plan | None:
        """The statement's plan (None: run it through SQLAlchemy)."""
        entry = self._plans.get(id(stmt))
        if entry is not None and entry[0] is stmt:
            return entry[1]
        try:
            plan = Plan(stmt, self._dialect)
        except (ValueError, sa_exc.SQLAlchemyError):
            plan = None
        with self._lock:
            if len(self._plans) < PLAN_CACHE_SIZE:
                self._plans[id(stmt)] = (stmt, plan)
        return plan


class Reader:
    """What :meth:`Database.connect` yields: a connection for single-statement reads.

    ``execute(select, params)`` runs a constant SELECT (a statement built once,
    with bound parameters) through its :class:`Plan`; rows have the same
    attributes as SQLAlchemy's. Anything a plan cannot take (other statements,
    parameters rendered at execution time) goes through SQLAlchemy unchanged.
    """

    __slots__ = ("_plans", "conn")

    def __init__(self, plans: Plans | None, conn: Connection) -> None:
        self.conn = conn
        self._plans = plans

    def execute(self, stmt, params: Mapping | None = None):
        plans = self._plans
        plan = plans.get(stmt) if plans is not None and isinstance(stmt, Select) else None
        if plan is None:
            return self.conn.execute(stmt, params)
        return plan.run(self.conn, params)


def reader_of(session: Session) -> Reader | Session:
    """A :class:`Reader` over ``session``'s connection and transaction.

    Constant SELECTs then run precompiled inside the session's transaction. A
    session that no :class:`Database` made is returned as it is.
    """
    db: Database | None = session.info.get(DATABASE_KEY)
    return session if db is None else db.reader(session.connection())
