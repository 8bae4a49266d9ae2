"""PostgreSQL's pool pings a connection before use only after it sat idle (db._ping_when_idle)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text

from usermgmt.core import db as db_module
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
def pings(monkeypatch):
    """Counts the dialect's pings of the Database given to it."""
    calls = []

    def counting(original):
        def ping(self, dbapi_connection):
            calls.append(dbapi_connection)
            return original(self, dbapi_connection)

        return ping

    def install(db: Database) -> list:
        cls = type(db.engine.dialect)
        monkeypatch.setattr(cls, "do_ping", counting(cls.do_ping))
        return calls

    return install


def test_a_connection_back_within_the_window_is_not_pinged(pg_url, monkeypatch, pings):
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 30.0)
    db = Database(pg_url, pool_size=1)
    try:
        calls = pings(db)
        first = _backend_pid(db)
        assert _backend_pid(db) == first  # the same pooled connection
        assert calls == []
    finally:
        db.dispose()


def test_an_idle_connection_is_pinged_and_a_dead_one_replaced(pg_url, monkeypatch, pings):
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.05)
    db = Database(pg_url, pool_size=1)
    try:
        calls = pings(db)
        first = _backend_pid(db)
        time.sleep(0.1)
        assert _backend_pid(db) == first and len(calls) == 1  # idle, pinged, alive
        _terminate(pg_url, first)
        time.sleep(0.1)
        second = _backend_pid(db)  # no error: the ping found it dead before use
        assert second != first
    finally:
        db.dispose()


def test_a_connection_that_died_within_the_window_fails_once_as_unavailable(pg_url, monkeypatch):
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 30.0)
    db = Database(pg_url, pool_size=1)
    try:
        first = _backend_pid(db)
        _terminate(pg_url, first)
        time.sleep(0.1)
        with pytest.raises(errors.DatabaseUnavailable):
            _backend_pid(db)
        assert _backend_pid(db) != first  # the pool reconnected by itself
    finally:
        db.dispose()
