"""Engines, units of work and the translation of driver errors into domain errors.

SQLite: WAL, foreign keys on, a busy timeout, and write transactions that start
with ``BEGIN IMMEDIATE`` so read-then-write sequences from several threads
cannot lose updates (pysqlite's deferred BEGIN lets two writers read the same
row and both write). Read transactions use a plain deferred ``BEGIN``.

PostgreSQL: psycopg 3, READ COMMITTED; services lock the rows they
read-then-write with ``SELECT … FOR UPDATE`` or use atomic updates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from usermgmt.core.errors import (
    Conflict,
    DatabaseUnavailable,
    DomainError,
    SchemaOutOfDate,
)

log = logging.getLogger("usermgmt.db")
WRITE_OPTION = "usermgmt_write"
SINGLE_OPTION = "usermgmt_single_statement"
SQLITE_BUSY_TIMEOUT_S = 30


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print and log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unparsable database URL)"


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
    )


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.database and parsed.database != ":memory:":
        directory = Path(parsed.database).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseUnavailable(
                f"Cannot create the directory of the SQLite database {directory}: {exc.strerror}"
            ) from None
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        pool_size=20,
        max_overflow=20,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
        # Take transaction control away from pysqlite; we emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        options = conn.get_execution_options()
        if options.get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif not options.get(SINGLE_OPTION):  # one statement is its own transaction
            conn.exec_driver_sql("BEGIN")

    return engine


# SQLite's words and PostgreSQL's SQLSTATEs for "the schema lacks this".
_SQLITE_SCHEMA_HINTS = ("no such table", "no such column")
_PG_SCHEMA_STATES = {"42P01", "42703"}  # undefined_table, undefined_column


def translate_db_error(exc: sa_exc.DBAPIError | sa_exc.SQLAlchemyError) -> DomainError:
    """Map a driver error to a domain error without leaking SQL or credentials."""
    message = str(getattr(exc, "orig", exc)).lower()
    if isinstance(exc, sa_exc.IntegrityError):
        return Conflict("The change conflicts with existing data")
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    if sqlstate in _PG_SCHEMA_STATES or any(h in message for h in _SQLITE_SCHEMA_HINTS):
        return SchemaOutOfDate()
    if "database is locked" in message:
        return DatabaseUnavailable("Database is busy; try again")
    return DatabaseUnavailable()


class _Scope:
    """A unit of work's shared read connection, opened on first use."""

    __slots__ = ("conn",)

    def __init__(self) -> None:
        self.conn: Connection | None = None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()


class Database:
    """One engine and two session factories: read (deferred) and write (immediate)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False)
        # Single-statement reads need no transaction: on PostgreSQL, autocommit
        # saves the BEGIN and ROLLBACK round trips; on SQLite no BEGIN is sent.
        self._single = (
            self.engine.execution_options(**{SINGLE_OPTION: True})
            if self.dialect == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write = sessionmaker(bind=write_engine, expire_on_commit=False)
        # The current scope (see open_scope) of this database, per thread or task.
        self._scope: ContextVar[_Scope | None] = ContextVar(f"usermgmt_db_{id(self)}", default=None)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: commits on success, rolls back everything on error."""
        with _translated(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (deferred BEGIN on SQLite, so readers never queue)."""
        with _translated(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A plain connection for a single-statement read on a hot path (no ORM session).

        One statement sees one snapshot, so no explicit transaction is needed; the
        connection is rolled back when it returns to the pool. Inside a scope
        (:meth:`open_scope`) every call shares the scope's connection, which is
        checked out on first use and returned when the scope closes.
        """
        scope = self._scope.get()
        if scope is None:
            with _translated(), self._single.connect() as conn:
                yield conn
            return
        with _translated():
            if scope.conn is None or scope.conn.closed:
                scope.conn = self._single.connect()
            yield scope.conn

    def open_scope(self) -> _Scope:
        """Start a scope in which :meth:`connect` reuses one pooled connection.

        A request that checks its token and then reads a user takes one
        connection from the pool instead of two (on PostgreSQL, one pre-ping
        instead of two). Nothing is cached: each statement still runs on its
        own, in autocommit, and sees the database as it is. Scopes are per
        thread (context) and do not nest: a scope left open (a bug) is closed
        by the next :meth:`open_scope` in the same thread. Pass the returned
        scope to :meth:`close_scope`.
        """
        stale = self._scope.get()
        if stale is not None:
            self._close_quietly(stale)
        scope = _Scope()
        self._scope.set(scope)
        return scope

    def close_scope(self, scope: _Scope) -> None:
        """Return the scope's connection to the pool (if it took one) and end the scope."""
        if self._scope.get() is scope:
            self._scope.set(None)
        self._close_quietly(scope)

    @staticmethod
    def _close_quietly(scope: _Scope) -> None:
        try:
            scope.close()
        except sa_exc.SQLAlchemyError as exc:  # the pool invalidates a broken connection
            log.warning("closing a scoped connection failed: %s", type(exc).__name__)

    def ping(self) -> None:
        """Raise DatabaseUnavailable unless the database answers a trivial query."""
        with _translated(), self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DomainError:
        raise
    except sa_exc.DBAPIError as exc:
        error = translate_db_error(exc)
        log.warning("database error mapped to %s: %s", error.code, type(exc.orig).__name__)
        log.debug("database error detail", exc_info=exc)
        raise error from None
