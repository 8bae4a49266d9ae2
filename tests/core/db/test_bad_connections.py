"""A connection that went bad is discarded: service recovers once the cause is gone.

The case of the issue: while the database was briefly read-only, the pool
opened connections, and they kept failing writes after it was writable again,
until a restart. SQLite opens a file it may not write read-only, for good;
PostgreSQL starts a session read-only for good while the database's
``default_transaction_read_only`` is on. Each test opens its Database inside
the read-only window, as a server started (or a pool grown) then would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from usermgmt.core import errors
from usermgmt.core.db import Database
from usermgmt.core.db import engine as db_engine
from usermgmt.core.db.errors import READ_ONLY
from usermgmt.core.models import Setting


@contextmanager
def _sqlite_file_read_only(path: Path):
    """The file cannot be opened for writing; as root (who ignores modes) it is made immutable."""
    if os.geteuid() != 0:
        os.chmod(path, 0o400)
        try:
            yield
        finally:
            os.chmod(path, 0o600)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only for root")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextmanager
def _postgres_database_read_only(admin_url: str, url: str):
    name = make_url(url).database
    admin = Database(admin_url)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
        try:
            yield
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
    finally:
        admin.dispose()


@pytest.fixture
def read_only(request, backend, database_url):
    if backend == "sqlite":
        return lambda: _sqlite_file_read_only(Path(make_url(database_url).database))
    admin = request.getfixturevalue("pg_admin_url")
    return lambda: _postgres_database_read_only(admin, database_url)


def _write(db: Database, key: str) -> None:
    with db.write() as s:
        s.add(Setting(key=key, value="v"))


def _keys(db: Database) -> set[str]:
    with db.read() as s:
        return set(s.execute(text("SELECT key FROM settings")).scalars())


def test_writes_recover_after_the_database_was_read_only(read_only, database_url):
    with read_only():
        db = Database(database_url)
        try:
            for attempt in range(2):
                with pytest.raises(errors.DatabaseUnavailable) as info:
                    _write(db, f"refused-{attempt}")
                assert info.value.message == READ_ONLY
            assert "refused-0" not in _keys(db)  # reads work meanwhile
        except BaseException:
            db.dispose()
            raise
    try:
        _write(db, "accepted")  # the same Database and pool: no restart
        assert "accepted" in _keys(db)
    finally:
        db.dispose()


def test_a_connection_whose_write_was_refused_is_discarded(read_only, database_url, monkeypatch):
    """The rule that does not depend on telling read-only connections apart when they
    open (PostgreSQL before 14 does not report it): a refused write discards its
    connection, so the next write, once the cause is gone, gets a new one."""
    monkeypatch.setattr(db_engine, "_lend_read_only_connections_once", lambda *args: None)
    with read_only():
        db = Database(database_url, pool_size=1)
        with pytest.raises(errors.DatabaseUnavailable):
            _write(db, "refused")
    try:
        _write(db, "accepted")
        assert "accepted" in _keys(db)
    finally:
        db.dispose()


def test_connections_that_only_read_while_read_only_do_not_fail_the_first_write(
    read_only, database_url
):
    """A connection opened read-only serves one checkout, so none is left in the pool
    to fail a write once the database is writable again."""
    with read_only():
        db = Database(database_url)
        _keys(db)  # a pooled connection, opened read-only
    try:
        _keys(db)  # the same connection, lent a second time: now replaced
        _write(db, "first-write")
        assert "first-write" in _keys(db)
    finally:
        db.dispose()
