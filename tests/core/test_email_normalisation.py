"""Emails are one account per address after NFKC and case folding, and migration 0010
brings rows stored under the old rule (lower case only) to the new form."""

import pytest
from sqlalchemy import select, text

from usermgmt.core import errors, migrate
from usermgmt.core.db import Database
from usermgmt.core.models import MailMessage, OneTimeToken, User
from usermgmt.core.schemas import normalise_identifier

from .helpers import STRONG, login, make_user

FULLWIDTH = "ａｄａ＠ｅｘａｍｐｌｅ.ｃｏｍ"  # noqa: RUF001 - the look-alike is the point


def _reset_token(services, to_addr):
    with services.db.read() as s:
        mail = s.execute(
            select(MailMessage)
            .where(MailMessage.template == "password_reset", MailMessage.to_addr == to_addr)
            .order_by(MailMessage.created_at.desc())
        ).scalars()
        return mail.first().context["token"]


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("Ada@Example.COM", "ada@example.com"),
        (FULLWIDTH, "ada@example.com"),
        ("ß@example.com", "ss@example.com"),
        ("ﬀ@example.com", "ff@example.com"),
        ("x@xn--r8jz45g.jp", "x@例え.jp"),
    ],
)
def test_normalisation_folds_look_alikes_and_is_idempotent(given, stored):
    from usermgmt.core.schemas import UserCreate, parse

    assert parse(UserCreate, {"email": given}).email == stored
    assert normalise_identifier(stored) == stored


@pytest.mark.parametrize("email", ["ada@lab.test", "ada@host.arpa", "ada@printer.local"])
def test_special_use_domains_are_refused(email):
    """No person has a mailbox there (RFC 6761); the field says why."""
    from usermgmt.core.schemas import UserCreate, parse

    with pytest.raises(errors.ValidationError) as refused:
        parse(UserCreate, {"email": email})
    assert "special-use" in refused.value.field_errors["email"][0]


def test_a_look_alike_is_the_same_account(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    with pytest.raises(errors.EmailExists):
        make_user(services, operator, ctx, FULLWIDTH)
    with pytest.raises(errors.EmailExists):
        services.auth.register(ctx, {"email": "ADA@ＥＸＡＭＰＬＥ.com", "password": STRONG})  # noqa: RUF001
    assert login(services, ctx, FULLWIDTH).user.email == "ada@example.com"
    assert services.user_reads.find(operator, FULLWIDTH).email == "ada@example.com"
    services.auth.forgot_password(ctx, {"email": FULLWIDTH})
    token = _reset_token(services, "ada@example.com")
    services.auth.reset_password(ctx, {"token": token, "new_password": "N3w-Password!x"})
    login(services, ctx, "ada@example.com", "N3w-Password!x")


def test_ss_and_sharp_s_are_one_address(services, operator, ctx):
    make_user(services, operator, ctx, "strasse@example.com")
    with pytest.raises(errors.EmailExists):
        make_user(services, operator, ctx, "straße@example.com")
    assert login(services, ctx, "STRAßE@example.com").user.email == "strasse@example.com"


def _to_old_form(database_url, *statements):
    """Back to the schema before 0010, with rows as the old rule stored them."""
    db = Database(database_url)
    migrate.downgrade(db, "0009")
    with db.engine.begin() as conn:
        for statement, params in statements:
            conn.execute(text(statement), params)
    return db


def test_migration_folds_stored_emails_with_their_search_text_and_tokens(
    database_url, make_services, operator, ctx
):
    services = make_services()
    make_user(services, operator, ctx, "ada@example.com", first_name="Ada")
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    token = _reset_token(services, "ada@example.com")
    old = "ａｄａ@example.com"  # noqa: RUF001 - what lower() alone kept
    db = _to_old_form(
        database_url,
        (
            "UPDATE users SET email = :old, search_text = :haystack WHERE email = :new",
            {"old": old, "new": "ada@example.com", "haystack": f"{old} ada"},
        ),
        ("UPDATE one_time_tokens SET email = :old", {"old": old}),
    )
    try:
        migrate.upgrade(db)
        assert migrate.schema_state(db).up_to_date
    finally:
        db.dispose()
    with services.db.read() as s:
        user = s.execute(select(User)).unique().scalar_one()
        assert user.email == "ada@example.com"
        assert user.search_text == "ada@example.com ada"
        assert s.execute(select(OneTimeToken.email)).scalars().all() == ["ada@example.com"]
    assert services.user_reads.list(operator, {"search": "ada@example"}).meta.total == 1
    services.auth.reset_password(ctx, {"token": token, "new_password": "N3w-Password!x"})
    assert login(services, ctx, FULLWIDTH, "N3w-Password!x").user.first_name == "Ada"


def test_migration_refuses_two_accounts_that_become_one(database_url, make_services, operator, ctx):
    services = make_services()
    kept = make_user(services, operator, ctx, "strasse@example.com")
    other = make_user(services, operator, ctx, "other@example.com")
    db = _to_old_form(
        database_url,
        (
            "UPDATE users SET email = :old WHERE email = :new",
            {"old": "straße@example.com", "new": "other@example.com"},
        ),
    )
    try:
        with pytest.raises(errors.Conflict) as refused:
            migrate.upgrade(db)
        assert str(kept.id) in refused.value.message and str(other.id) in refused.value.message
        assert migrate.schema_state(db).current == "0009"
        with db.engine.connect() as conn:
            emails = conn.execute(text("SELECT email FROM users ORDER BY email")).scalars()
            assert list(emails) == ["strasse@example.com", "straße@example.com"]
    finally:
        db.dispose()
