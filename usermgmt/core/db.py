"""Engines, units of work and the translation of driver errors into domain errors.

SQLite: WAL, foreign keys on, a busy timeout, and write transactions that start
with ``BEGIN IMMEDIATE`` so read-then-write sequences from several threads
cannot lose updates (pysqlite's deferred BEGIN lets two writers read the same
row and both write). Read transactions use a plain deferred ``BEGIN``.

PostgreSQL: psycopg 3, READ COMMITTED; services lock the rows they
read-then-write with ``SELECT … FOR UPDATE`` or use atomic updates.
"""

from __future__ import annotations

import keyword
import logging
import os
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import Connection, Engine, Select, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from usermgmt.core.db_errors import (
    BUSY,
    check_lengths,
    discards_connection,
    note_too_long,
    translate_db_error,
)
from usermgmt.core.errors import DatabaseUnavailable, DomainError, UnexpectedDatabaseError

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


# A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_S = 1.0


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5},
        hide_parameters=True,  # no value (a hash, a secret) in an error's text or a log
    )
    _ping_when_idle(engine, PING_AFTER_IDLE_S)
    _watch_errors(engine)
    _lend_read_only_connections_once(engine, _postgres_read_only)
    return engine


def _watch_errors(engine: Engine) -> None:
    """Discard connections left unusable by their error; note which column was too long."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context) -> None:
        error = context.original_exception
        if not context.is_disconnect and discards_connection(error):
            # Invalidates this connection and every pooled one as old: the pool
            # reconnects, so service comes back once the cause is gone.
            context.is_disconnect = True
        if getattr(error, "sqlstate", None) == "22001":
            note_too_long(context)


def _is_disconnect(dialect, error: Exception, dbapi_connection, cursor) -> bool:
    """The rule of ``_watch_errors``, for statements run on the driver's cursor (Plan)."""
    return dialect.is_disconnect(error, dbapi_connection, cursor) or discards_connection(error)


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout, but only if it sat idle for ``idle_s``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a third of the round
    trips of an authenticated GET. A connection returned less than a second ago
    is almost surely alive; one that sat longer (a restart of the server, a
    firewall or ``idle_session_timeout`` cutting it) is pinged, and a dead one is
    replaced before use, as pre-ping would. A connection that dies within the
    second fails its statement: the pool drops every connection older than the
    failure and the request answers 503 (as it would if the server died during
    the request), and the next ones connect afresh.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _fresh(dbapi_conn, record) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_conn, record) -> None:
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, proxy) -> None:
        if time.monotonic() - record.info.get("returned_at", 0.0) <= idle_s:
            return
        try:
            alive = dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                alive = False
            else:
                raise
        if not alive:
            # As a failed pre-ping does: the pool drops every connection as old as this
            # one (after a server restart they are all dead) and connects afresh.
            raise sa_exc.InvalidatePoolError("connection found dead after idling in the pool")


def _sqlite_engine(url: str) -> Engine:
    parsed = make_url(url)
    path = None
    if parsed.database and parsed.database != ":memory:" and "uri" not in parsed.query:
        path = Path(parsed.database).expanduser()
        _private_sqlite_file(path)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        pool_size=20,
        max_overflow=20,
        hide_parameters=True,
    )
    _watch_errors(engine)
    if path is not None:
        _lend_read_only_connections_once(engine, lambda _conn: not os.access(path, os.W_OK))

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


def _lend_read_only_connections_once(engine: Engine, opened_read_only) -> None:
    """A connection that opened read-only is lent once, then replaced by a new one.

    SQLite opens a file it may not write read-only, and the connection stays
    read-only when the file is writable again; PostgreSQL starts a session
    read-only while ``default_transaction_read_only`` is on (or on a standby),
    and it stays so. A write on such a connection fails and discards it
    (``_watch_errors``); a connection that only read meanwhile would fail the
    first write after the cause is gone. Such connections are rare (only
    while the database is read-only), so each serves one checkout.
    ``opened_read_only(dbapi_connection)`` tells them apart when they connect.
    """

    @event.listens_for(engine, "connect")
    def _note(dbapi_conn, record) -> None:
        record.info["read_only"] = opened_read_only(dbapi_conn)

    @event.listens_for(engine, "checkout")
    def _once(dbapi_conn, record, proxy) -> None:
        state = record.info.get("read_only")
        if state == "lent":
            raise sa_exc.DisconnectionError("a connection opened read-only is not reused")
        if state:
            record.info["read_only"] = "lent"


def _postgres_read_only(dbapi_conn) -> bool:
    """What the server reported at connect (PostgreSQL 14+; older ones report neither)."""
    status = dbapi_conn.info.parameter_status
    return "on" in (status("default_transaction_read_only"), status("in_hot_standby"))


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 in a 0700 directory (see private_files).

    SQLite creates its -wal and -shm files with the database file's mode, so
    they are 0600 too.
    """
    from usermgmt.core.private_files import create_private_file, private_dir

    try:
        private_dir(path.parent)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"Cannot create the directory of the SQLite database {path.parent}: {exc.strerror}"
        ) from None
    try:
        create_private_file(path)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"Cannot create the SQLite database {path}: {exc.strerror}"
        ) from None


# ---- precompiled single-statement reads ---------------------------------------------
# The hot reads (the token check, one user by id) are constant SELECTs with bound
# parameters. SQLAlchemy's execute spends ~50 us of Python per statement (cache
# lookup, execution context, events, result metadata) around ~8 us in the
# driver; a Plan compiles such a statement once per database, with SQLAlchemy's
# own compiler and type processors, and runs it on the driver's cursor.

# Plans are kept for constant statements only (module-level, or one per sort and
# id bucket in user_queries: under a hundred), so the bound is a safety net.
PLAN_CACHE_SIZE = 512


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
            invalidated = _is_disconnect(dialect, exc, fairy.dbapi_connection, cursor)
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


class Reader:
    """What :meth:`Database.connect` yields: a connection for single-statement reads.

    ``execute(select, params)`` runs a constant SELECT (a module-level statement
    with bound parameters) through its :class:`Plan`; rows have the same
    attributes as SQLAlchemy's. Anything a plan cannot take (other statements,
    parameters rendered at execution time) goes through SQLAlchemy unchanged.
    """

    __slots__ = ("_db", "conn")

    def __init__(self, db: Database, conn: Connection) -> None:
        self.conn = conn
        self._db = db

    def execute(self, stmt, params: Mapping | None = None):
        plan = self._db._plan(stmt) if isinstance(stmt, Select) else None
        if plan is None:
            return self.conn.execute(stmt, params)
        return plan.run(self.conn, params)


_DATABASE_KEY = "usermgmt.database"


def reader_of(session: Session) -> Reader | Session:
    """A :class:`Reader` over ``session``'s connection and transaction.

    Constant SELECTs then run precompiled (:class:`Plan`) inside the session's
    transaction, which saves SQLAlchemy's per-execution work (a page of twenty
    users: ~300 µs through the session, ~100 µs this way). A session that no
    :class:`Database` made is returned as it is.
    """
    db = session.info.get(_DATABASE_KEY)
    return session if db is None else Reader(db, session.connection())


class _Scope:
    """A unit of work's shared read connection, opened on first use."""

    __slots__ = ("reader",)

    def __init__(self) -> None:
        self.reader: Reader | None = None

    def close(self) -> None:
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.conn.close()


def upsert(dialect: str):
    """The ``insert`` (with ``on_conflict_do_update``) of ``dialect``, imported on first use.

    Importing the PostgreSQL dialect costs about 30 ms, which a command on SQLite
    should not pay.
    """
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# Every plain GIN index (not a partitioned parent) of the current schema.
_MERGE_GIN_PENDING_LISTS = (
    "SELECT gin_clean_pending_list(c.oid) FROM pg_class c "
    "JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE a.amname = 'gin' AND c.relkind = 'i' AND n.nspname = current_schema()"
)


class Database:
    """One engine and two session factories: read (deferred) and write (immediate)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.dialect = self.engine.dialect.name
        if self.dialect == "postgresql":
            from usermgmt.core import models_pg  # noqa: F401  (the indexes SQLite has no use for)
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        # Sessions know their Database, so a query inside one can run a constant
        # SELECT precompiled (see reader_of).
        info = {_DATABASE_KEY: self}
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, info=info)
        event.listen(self._read, "before_flush", check_lengths)
        # Single-statement reads need no transaction: on PostgreSQL, autocommit
        # saves the BEGIN and ROLLBACK round trips; on SQLite no BEGIN is sent.
        self._single = (
            self.engine.execution_options(**{SINGLE_OPTION: True})
            if self.dialect == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self._write = sessionmaker(bind=write_engine, expire_on_commit=False, info=info)
        event.listen(self._write, "before_flush", check_lengths)
        # Plans by statement (identity); the statement is kept so its id stays unique.
        self._plans: dict[int, tuple[Select, Plan | None]] = {}
        self._plans_lock = threading.Lock()
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
    def connect(self) -> Iterator[Reader]:
        """A :class:`Reader` for single-statement reads on a hot path (no ORM session).

        Constant SELECTs run precompiled on the driver (see :class:`Plan`).
        One statement sees one snapshot, so no explicit transaction is needed; the
        connection is rolled back when it returns to the pool. Inside a scope
        (:meth:`open_scope`) every call shares the scope's connection, which is
        checked out on first use and returned when the scope closes.
        """
        scope = self._scope.get()
        if scope is None:
            with _translated(), self._single.connect() as conn:
                yield Reader(self, conn)
            return
        with _translated():
            if scope.reader is None or scope.reader.conn.closed:
                scope.reader = Reader(self, self._single.connect())
            yield scope.reader

    def _plan(self, stmt: Select) -> Plan | None:
        """The statement's plan, made on first use (None: run it through SQLAlchemy)."""
        entry = self._plans.get(id(stmt))
        if entry is not None and entry[0] is stmt:
            return entry[1]
        try:
            plan = Plan(stmt, self.engine.dialect)
        except (ValueError, sa_exc.SQLAlchemyError):
            plan = None
        with self._plans_lock:
            if len(self._plans) < PLAN_CACHE_SIZE:
                self._plans[id(stmt)] = (stmt, plan)
        return plan

    def open_scope(self) -> _Scope:
        """Start a scope in which :meth:`connect` reuses one pooled connection.

        A request that checks its token and then reads a user takes one
        connection from the pool instead of two. Nothing is cached: each statement still runs on its
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

    def merge_pending_index_entries(self) -> None:
        """PostgreSQL: merge the GIN indexes' pending lists into the indexes now.

        A GIN index (the trigram search indexes) collects new entries in an
        unsorted pending list that every search scans until autovacuum merges
        it, up to a minute later: after a bulk import searches were several
        times slower for that minute. Best effort: a role that does not own
        the indexes may not merge them, and then autovacuum still will.
        """
        if not self.is_postgres:
            return
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql(_MERGE_GIN_PENDING_LISTS)
                conn.commit()
        except sa_exc.SQLAlchemyError as exc:
            log.warning("could not merge the search indexes' new entries: %s", type(exc).__name__)

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
        if isinstance(error, UnexpectedDatabaseError):
            raise error from exc  # a bug: whoever logs it gets the cause (no values in it)
        raise error from None
    except sa_exc.TimeoutError:  # no pooled connection came free in time
        log.warning("database error mapped to SERVICE_UNAVAILABLE: pool timeout")
        raise DatabaseUnavailable(BUSY) from None
