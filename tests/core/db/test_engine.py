"""PostgreSQL pings a pooled connection before use only after it sat idle (db.engine)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from usermgmt.core import errors
from usermgmt.core.db import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: SQLite's pool needs no ping."""
    return "postgres"


@pytest.fixture
def pg_url(database_url):
    return database_url


def _backend_pid(db: Database) -> int:
    with db.connect() as reader:
        return reader.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _terminate(url: str, pid: int) -> None:
    killer = Database(url)
    try:
        with killer.connect() as reader:
            assert reader.execute(text(f"SELECT pg_terminate_backend({pid})")).scalar_one()
    finally:
        killer.dispose()


@pytest.fixture
def one_connection(pg_url, monkeypatch):
    """A Database of one pooled connection pinged after ``idle_s``; its pings are counted."""
    made: list[Database] = []

    def make(idle_s: float) -> tuple[Database, list]:
        db = Database(pg_url, pool_size=1, ping_after_idle_s=idle_s)
        made.append(db)
        calls: list = []
        cls = type(db.engine.dialect)
        original = cls.do_ping

        def counting(self, dbapi_connection):
            calls.append(dbapi_connection)
            return original(self, dbapi_connection)

        monkeypatch.setattr(cls, "do_ping", counting)
        return db, calls

    yield make
    for db in made:
        db.dispose()


def test_a_connection_back_within_the_window_is_not_pinged(one_connection):
    db, pings = one_connection(idle_s=30.0)
    first = _backend_pid(db)
    assert _backend_pid(db) == first  # the same pooled connection
    assert pings == []


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(pg_url, one_connection):
    db, pings = one_connection(idle_s=0.05)
    first = _backend_pid(db)
    time.sleep(0.1)
    assert _backend_pid(db) == first and len(pings) == 1  # idle, pinged, alive
    _terminate(pg_url, first)
    time.sleep(0.1)
    assert _backend_pid(db) != first  # no error: the ping found it dead before use


def test_a_connection_that_died_within_the_window_fails_once_as_unavailable(pg_url, one_connection):
    db, _pings = one_connection(idle_s=30.0)
    first = _backend_pid(db)
    _terminate(pg_url, first)
    time.sleep(0.1)
    with pytest.raises(errors.DatabaseUnavailable):
        _backend_pid(db)
    assert _backend_pid(db) != first  # the pool reconnected by itself
