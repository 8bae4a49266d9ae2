"""Database errors are classified by what really failed (usermgmt.core.db.errors).

The writes here go to the database directly (ORM or Core statements), past the
services' input models, so the database's own refusals are what is tested.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, select, text, update

from usermgmt.core import errors
from usermgmt.core.db import Database
from usermgmt.core.db.errors import BUSY, translate_db_error
from usermgmt.core.models import Profile, RefreshToken, Role, User

POSTGRES_ONLY = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def new_user(**columns) -> User:
    """A user row as the services would write it (they set ids and times; the models don't)."""
    return User(id=uuid.uuid4(), created_at=NOW, updated_at=NOW, **columns)


@pytest.fixture
def db(database_url):
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def ada(db) -> uuid.UUID:
    with db.write() as s:
        user = new_user(email="ada@example.com", username="ada")
        user.profile = Profile()
        s.add(user)
        s.flush()
        return user.id


def _fails(db, change) -> errors.DomainError:
    """The domain error a write transaction making ``change(session)`` ends with."""
    with pytest.raises(errors.DomainError) as info, db.write() as s:
        change(s)
        s.flush()
    return info.value


def test_a_taken_email_is_email_exists(db, ada):
    error = _fails(db, lambda s: s.add(new_user(email="ada@example.com")))
    assert type(error) is errors.EmailExists


def test_a_taken_username_is_username_exists(db, ada):
    error = _fails(db, lambda s: s.add(new_user(email="other@example.com", username="ada")))
    assert type(error) is errors.UsernameExists


def test_another_unique_column_is_a_plain_conflict(db, ada):
    def two_tokens_with_one_hash(s):
        session = _auth_session(s, ada)
        expires = session.expires_at
        for _ in range(2):
            s.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    session_id=session.id,
                    token_hash="f" * 64,
                    issued_at=NOW,
                    expires_at=expires,
                )
            )

    error = _fails(db, two_tokens_with_one_hash)
    assert type(error) is errors.Conflict
    assert error.code == "CONFLICT"


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("email", lambda user: setattr(user, "email", None)),
        ("is_active", lambda user: setattr(user, "is_active", None)),
        ("profile.timezone", lambda user: setattr(user.profile, "timezone", None)),
    ],
)
def test_a_null_for_a_non_null_column_names_the_field(db, ada, field, change):
    error = _fails(db, lambda s: change(s.get(User, ada)))
    assert type(error) is errors.ValidationError
    assert error.field_errors == {field: ["Must not be null"]}
    assert "NULL" not in error.message and "INSERT" not in error.message


@pytest.mark.parametrize(
    ("field", "length", "change"),
    [
        ("profile.locale", 16, lambda user: setattr(user.profile, "locale", "en-" + "x" * 14)),
        ("username", 50, lambda user: setattr(user, "username", "u" * 51)),
    ],
)
def test_a_value_too_long_for_its_column_names_the_field(db, ada, field, length, change):
    """SQLite does not enforce declared lengths; the flush guard does, on both databases."""
    error = _fails(db, lambda s: change(s.get(User, ada)))
    assert type(error) is errors.ValidationError
    assert error.field_errors == {field: [f"Must be at most {length} characters"]}
    with db.read() as s:
        user = s.get(User, ada)
        assert (user.username, user.profile.locale) == ("ada", "en")  # nothing was stored


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_too_long_value_stored_earlier_does_not_block_other_changes(db, ada):
    """SQLite stored values of any length before the guard; only values written are checked."""
    with db.write() as s:
        s.execute(update(Profile).where(Profile.user_id == ada).values(locale="x" * 20))
    with db.write() as s:
        s.get(User, ada).profile.phone = "+44 20 7946 0000"
    error = _fails(db, lambda s: setattr(s.get(User, ada).profile, "locale", "y" * 20))
    assert error.field_errors == {"profile.locale": ["Must be at most 16 characters"]}


@POSTGRES_ONLY
def test_postgres_too_long_in_a_core_statement_names_the_column(db, ada):
    """Core statements bypass the flush guard: PostgreSQL's 22001 names no column,
    so the failed statement's values are checked against their columns."""
    error = _fails(
        db,
        lambda s: s.execute(update(Profile).where(Profile.user_id == ada).values(locale="x" * 17)),
    )
    assert type(error) is errors.ValidationError
    assert error.field_errors == {"profile.locale": ["Must be at most 16 characters"]}
    # Several rows in one statement (executemany): the offending row's column.
    rows = [{"name": "fine", "description": ""}, {"name": "n" * 33, "description": ""}]
    error = _fails(db, lambda s: s.execute(insert(Role.__table__), rows))
    assert error.field_errors == {"name": ["Must be at most 32 characters"]}


@POSTGRES_ONLY
def test_postgres_other_data_errors_are_validation_errors(db):
    with pytest.raises(errors.ValidationError) as info, db.read() as s:
        s.execute(text("SELECT CAST(:v AS integer)"), {"v": "twelve"})
    assert info.value.code == "VALIDATION_ERROR"
    assert "twelve" not in info.value.message


def test_a_bug_in_a_statement_is_an_unexpected_error_with_its_cause(db):
    with pytest.raises(errors.UnexpectedDatabaseError) as info, db.read() as s:
        s.execute(text("SELEC 1"))
    error = info.value
    assert error.code == "INTERNAL_ERROR"
    assert "SELEC" not in error.message
    assert isinstance(error.__cause__, sa_exc.DBAPIError)  # for the log of a 500


def test_a_missing_table_is_an_out_of_date_schema(db):
    with pytest.raises(errors.SchemaOutOfDate), db.read() as s:
        s.execute(text("SELECT * FROM no_such_table"))


@POSTGRES_ONLY
def test_postgres_statement_timeout_is_busy(db):
    with pytest.raises(errors.DatabaseUnavailable) as info, db.read() as s:
        s.execute(text("SET LOCAL statement_timeout = 1"))
        s.execute(text("SELECT pg_sleep(5)"))
    assert info.value.message == BUSY and isinstance(info.value, errors.DatabaseBusy)


@POSTGRES_ONLY
def test_postgres_lock_timeout_is_busy(db, ada):
    with db.write() as holder:
        holder.execute(select(User.id).where(User.id == ada).with_for_update())
        with pytest.raises(errors.DatabaseUnavailable) as info, db.write() as s:
            s.execute(text("SET LOCAL lock_timeout = 1"))
            s.execute(select(User.id).where(User.id == ada).with_for_update())
    assert info.value.message == BUSY and isinstance(info.value, errors.DatabaseBusy)


def test_sqlite_locked_database_is_busy(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        waiter.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        wrapped = sa_exc.DBAPIError.instance("BEGIN IMMEDIATE", None, exc, sqlite3.Error)
    finally:
        holder.close()
        waiter.close()
    error = translate_db_error(wrapped)
    assert type(error) is errors.DatabaseBusy  # a DatabaseUnavailable: 503 alike
    assert error.message == BUSY


def test_a_pool_that_lends_no_connection_in_time_is_busy(db, monkeypatch):
    def exhausted():
        raise sa_exc.TimeoutError("QueuePool limit of size 10 overflow 20 reached")

    monkeypatch.setattr(db.engine.pool, "connect", exhausted)
    with pytest.raises(errors.DatabaseUnavailable) as info, db.read() as s:
        s.execute(select(1))
    assert info.value.message == BUSY and isinstance(info.value, errors.DatabaseBusy)


def test_every_face_treats_an_unexpected_database_error_as_unexpected():
    from usermgmt.api.errors import to_api_error
    from usermgmt.cli.errors import EXIT_UNEXPECTED, exit_code_for
    from usermgmt.tui.errors import reaction_for

    error = errors.UnexpectedDatabaseError("Unexpected database error (ProgrammingError)")
    api = to_api_error(error)
    assert (api.status_code, api.code, api.message) == (
        500,
        "INTERNAL_ERROR",
        "Internal server error",
    )
    assert exit_code_for(error) == EXIT_UNEXPECTED
    assert reaction_for(error).severity == "error"


def _auth_session(s, user_id):
    from usermgmt.core.models import AuthSession

    session = AuthSession(
        id=uuid.uuid4(), user_id=user_id, created_at=NOW, expires_at=NOW + timedelta(days=1)
    )
    s.add(session)
    s.flush()
    return session
