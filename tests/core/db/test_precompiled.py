"""Database.connect: planned single-statement reads, on both databases."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, exc, select, text, update

from usermgmt.core import errors
from usermgmt.core.models import User
from usermgmt.core.reads.user_rows import _USER_BY_ID
from usermgmt.core.services.auth import _TOKEN_CHECK

from ..helpers import login, make_user

BY_EMAIL = select(User.id, User.email, User.is_active, User.created_at, User.locked_until).where(
    User.email == bindparam("email")
)


def _sqlalchemy_rows(db, stmt, params):
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(stmt, params).all()]


def test_planned_reads_match_sqlalchemy(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com", roles=("user", "moderator"))
    result = login(services, ctx, "ada@example.com")
    session_id = services.auth.authenticate_token(result.tokens.access_token).session_id
    with services.db.write() as s:
        s.execute(
            update(User)
            .where(User.id == user.id)
            .values(locked_until=services.clock.now() - timedelta(days=1))
        )
    cases = [
        (_TOKEN_CHECK, {"session_id": session_id}),
        (_USER_BY_ID, {"user_id": user.id}),
        (_USER_BY_ID, {"user_id": uuid.uuid4()}),
        (BY_EMAIL, {"email": "ada@example.com"}),
    ]
    for stmt, params in cases:
        with services.db.connect() as conn:
            got = conn.execute(stmt, params).all()
        assert [tuple(row) for row in got] == _sqlalchemy_rows(services.db, stmt, params)
        for row in got:  # attribute access by column key, as on SQLAlchemy's rows
            assert all(getattr(row, key) == row[i] for i, key in enumerate(row._fields))
    with services.db.connect() as conn:
        row = conn.execute(BY_EMAIL, {"email": "ada@example.com"}).first()
    assert isinstance(row.id, uuid.UUID) and row.is_active is True
    assert row.created_at.tzinfo is not None and row.locked_until.tzinfo is not None
    assert services.db.plans.get(BY_EMAIL) is not None  # it really took the planned path


def test_statements_a_plan_cannot_take_go_through_sqlalchemy(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    in_list = select(User.email).where(User.email.in_(bindparam("emails", expanding=True)))
    private_key = select(User.id.label("_id"))  # not a valid row attribute
    with services.db.connect() as conn:
        assert conn.execute(in_list, {"emails": ["ada@example.com"]}).all() == [
            ("ada@example.com",)
        ]
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert len(conn.execute(private_key).all()) == 1
    assert services.db.plans.get(in_list) is None
    assert services.db.plans.get(private_key) is None


def test_a_missing_parameter_is_an_error(services):
    with pytest.raises(Exception, match="required"), services.db.connect() as conn:
        conn.execute(_USER_BY_ID, {})


def test_driver_errors_become_domain_errors(services):
    missing = (
        select(text("x"))
        .select_from(text("no_such_table"))
        .where(text("x = :v").bindparams(bindparam("v")))
    )
    with pytest.raises(errors.DomainError), services.db.connect() as conn:
        conn.execute(missing, {"v": 1}).all()
    # The connection is still usable afterwards (on PostgreSQL: autocommit, no aborted block).
    with services.db.connect() as conn:
        assert conn.execute(BY_EMAIL, {"email": "nobody@example.com"}).all() == []


def test_planned_rows_answer_like_a_result(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    make_user(services, operator, ctx, "bob@example.com")
    every = select(User.email, User.is_active).order_by(User.email)
    one = BY_EMAIL
    with services.db.connect() as conn:
        assert services.db.plans.get(every) is not None
        assert conn.execute(every).scalars().all() == ["ada@example.com", "bob@example.com"]
        assert conn.execute(every).mappings().first() == {
            "email": "ada@example.com",
            "is_active": True,
        }
        assert conn.execute(one, {"email": "ada@example.com"}).one().email == "ada@example.com"
        assert conn.execute(one, {"email": "x@example.com"}).one_or_none() is None
        assert conn.execute(one, {"email": "x@example.com"}).scalar_one_or_none() is None
        assert conn.execute(every).scalar() == "ada@example.com"
        with pytest.raises(exc.MultipleResultsFound):
            conn.execute(every).one_or_none()
        with pytest.raises(exc.NoResultFound):
            conn.execute(one, {"email": "x@example.com"}).scalar_one()
