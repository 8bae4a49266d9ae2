"""The database as the core uses it: units of work over one engine.

- :meth:`Database.write`: a write transaction (``BEGIN IMMEDIATE`` on SQLite),
  committed on success, rolled back on any error;
- :meth:`Database.read`: a read transaction (deferred, so readers never queue);
- :meth:`Database.connect`: one connection for single-statement reads, in
  autocommit, where constant SELECTs run precompiled (usermgmt.core.db.precompiled);
  inside a scope (:meth:`Database.open_scope`) every call shares one connection.

Every driver error leaving a unit of work is a domain error (usermgmt.core.db.errors).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import Connection, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from usermgmt.core.db.engine import PING_AFTER_IDLE_S, SINGLE_OPTION, WRITE_OPTION, make_engine
from usermgmt.core.db.errors import check_lengths, translated
from usermgmt.core.db.precompiled import DATABASE_KEY, Plans, Reader

log = logging.getLogger("usermgmt.db")


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

    Importing the PostgreSQL dialect is slow enough to notice in a short
    command on SQLite, which has no use for it.
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
    """One engine and three ways in: write and read sessions, single-statement reads.

    ``pool_size``: PostgreSQL's pooled connections (see usermgmt.core.services.
    build_services for the sizing rule); ``ping_after_idle_s``: a pooled
    connection idle for longer is pinged before use; ``precompiled``: run
    constant SELECTs of single-statement reads on the driver (a Plan each);
    ``prepared_statements=False``: none on the PostgreSQL server (for PgBouncer's
    transaction pooling).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        ping_after_idle_s: float = PING_AFTER_IDLE_S,
        precompiled: bool = True,
        prepared_statements: bool = True,
    ) -> None:
        self.url = url
        self.engine = make_engine(
            url,
            pool_size=pool_size,
            ping_after_idle_s=ping_after_idle_s,
            prepared_statements=prepared_statements,
        )
        self.dialect = self.engine.dialect.name
        if self.dialect == "postgresql":
            from usermgmt.core import models_pg  # noqa: F401  (the indexes SQLite has no use for)
        self.plans = Plans(self.engine.dialect) if precompiled else None
        # Sessions know their Database, so a query inside one can run a constant
        # SELECT precompiled (see precompiled.reader_of).
        info = {DATABASE_KEY: self}
        self._read = sessionmaker(bind=self.engine, expire_on_commit=False, info=info)
        event.listen(self._read, "before_flush", check_lengths)
        write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._write = sessionmaker(bind=write_engine, expire_on_commit=False, info=info)
        event.listen(self._write, "before_flush", check_lengths)
        # Single-statement reads need no transaction: on PostgreSQL, autocommit
        # saves the BEGIN and ROLLBACK round trips; on SQLite no BEGIN is sent.
        self._single = (
            self.engine.execution_options(**{SINGLE_OPTION: True})
            if self.dialect == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
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
        with translated(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read transaction (deferred BEGIN on SQLite, so readers never queue)."""
        with translated(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def connect(self) -> Iterator[Reader]:
        """A :class:`Reader` for single-statement reads on a hot path (no ORM session).

        One statement sees one snapshot, so no explicit transaction is needed; the
        connection is rolled back when it returns to the pool. Inside a scope
        (:meth:`open_scope`) every call shares the scope's connection, which is
        checked out on first use and returned when the scope closes.
        """
        scope = self._scope.get()
        if scope is None:
            with translated(), self._single.connect() as conn:
                yield self.reader(conn)
            return
        with translated():
            if scope.reader is None or scope.reader.conn.closed:
                scope.reader = self.reader(self._single.connect())
            yield scope.reader

    def reader(self, conn: Connection) -> Reader:
        """A :class:`Reader` over ``conn`` (a session's connection, say)."""
        return Reader(self.plans, conn)

    def open_scope(self) -> _Scope:
        """Start a scope in which :meth:`connect` reuses one pooled connection.

        A request that checks its token and then reads a user takes one
        connection from the pool instead of two. Nothing is cached: each
        statement still runs on its own, in autocommit, and sees the database
        as it is. Scopes are per thread (context) and do not nest: a scope left
        open (a bug) is closed by the next :meth:`open_scope` in the same
        thread. Pass the returned scope to :meth:`close_scope`.
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
        with translated(), self.engine.connect() as conn:
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
