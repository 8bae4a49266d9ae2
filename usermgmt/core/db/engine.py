"""Engines and their pools: connection settings per database, checks on checkout.

SQLite: WAL, foreign keys on, a busy timeout, and write transactions that start
with ``BEGIN IMMEDIATE`` so read-then-write sequences from several threads
cannot lose updates (pysqlite's deferred BEGIN lets two writers read the same
row and both write). Read transactions use a plain deferred ``BEGIN``; a
single-statement read sends no BEGIN at all.

PostgreSQL: psycopg 3, READ COMMITTED; services lock the rows they
read-then-write with ``SELECT … FOR UPDATE`` or use atomic updates.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from usermgmt.core.db.driver_options import psycopg_options
from usermgmt.core.db.errors import discards_connection, note_too_long
from usermgmt.core.errors import ConfigurationError, DatabaseUnavailable

# Execution options the begin hook of SQLite reads (see _sqlite_engine).
WRITE_OPTION = "usermgmt_write"
SINGLE_OPTION = "usermgmt_single_statement"
SQLITE_BUSY_TIMEOUT_S = 30
# A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_S = 1.0


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***, safe to print and log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "(unparsable database URL)"


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
    prepared_statements: bool = True,
) -> Engine:
    """The engine for ``url``; on PostgreSQL a pool of ``pool_size`` connections.

    ``prepared_statements=False``: psycopg prepares nothing on the server (for a
    pooler in transaction mode; see usermgmt.core.db.driver_options).
    """
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    try:
        driver = psycopg_options(url, prepared_statements=prepared_statements)
    except ValueError as exc:
        raise ConfigurationError(f"USERMGMT_DATABASE_URL: {exc}") from None
    engine = create_engine(
        driver.url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, **driver.connect_args},
        hide_parameters=True,  # no value (a hash, a secret) in an error's text or a log
    )
    _ping_when_idle(engine, ping_after_idle_s)
    _watch_errors(engine)
    _lend_read_only_connections_once(engine, _postgres_read_only)
    return engine


def is_disconnect(dialect, error: Exception, dbapi_connection, cursor) -> bool:
    """Whether ``error`` leaves the connection unusable: the dialect's rule plus ours.

    What ``_watch_errors`` applies to statements run through SQLAlchemy, for those
    run on the driver's cursor (usermgmt.core.db.precompiled).
    """
    return dialect.is_disconnect(error, dbapi_connection, cursor) or discards_connection(error)


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


def _ping_when_idle(engine: Engine, idle_s: float) -> None:
    """Ping a pooled connection on checkout, but only if it sat idle for ``idle_s``.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, a round trip per
    request. A connection returned a moment ago is almost surely alive; one
    that sat longer (a restart of the server, a firewall or
    ``idle_session_timeout`` cutting it) is pinged, and a dead one is replaced
    before use, as pre-ping would. A connection that dies within the window
    fails its statement: the pool drops every connection older than the
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
