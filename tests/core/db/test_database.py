"""Database.connect in request scopes, on both databases."""

import threading

import pytest
from sqlalchemy import update

from usermgmt.core import errors
from usermgmt.core.models import AuthSession

from ..helpers import login, make_user


def test_a_scope_shares_one_connection_and_returns_it(services):
    db = services.db
    with db.connect() as a, db.connect() as b:
        assert a is not b  # no scope: each call its own connection
    token = db.open_scope()
    try:
        with db.connect() as first:
            pass
        with db.connect() as second:
            assert second is first
            assert not second.conn.closed
        seen = []
        worker = threading.Thread(target=lambda: seen.append(_reader_conn(db)))
        worker.start()
        worker.join()
        assert seen[0] is not first  # scopes are per thread
    finally:
        db.close_scope(token)
    assert first.conn.closed
    with db.connect() as after:
        assert after is not first


def _reader_conn(db):
    with db.connect() as reader:
        return reader


def test_a_scope_sees_every_change_at_once(services, operator, ctx):
    """Nothing is cached: a session revoked mid-scope is refused by the next check."""
    make_user(services, operator, ctx, "ada@example.com")
    token_text = login(services, ctx, "ada@example.com").tokens.access_token
    scope = services.db.open_scope()
    try:
        actor = services.auth.authenticate_token(token_text)
        with services.db.write() as s:
            s.execute(
                update(AuthSession)
                .where(AuthSession.id == actor.session_id)
                .values(revoked_at=services.clock.now())
            )
        with pytest.raises(errors.AuthenticationError):
            services.auth.authenticate_token(token_text)
    finally:
        services.db.close_scope(scope)


def test_a_scope_left_open_is_closed_by_the_next(services):
    db = services.db
    db.open_scope()  # never closed (a bug somewhere)
    with db.connect() as leaked:
        pass
    token = db.open_scope()
    assert leaked.conn.closed
    db.close_scope(token)
    assert db._scope.get() is None
