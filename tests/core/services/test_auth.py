"""Authentication flows through the core, on both databases."""

import pytest
from sqlalchemy import select

from usermgmt.core import errors, passwords
from usermgmt.core.context import RequestContext
from usermgmt.core.models import MailMessage, RefreshToken, User

from ..helpers import STRONG, actor_of, login, make_user


def _last_mail(services, template):
    with services.db.read() as s:
        return (
            s.execute(
                select(MailMessage)
                .where(MailMessage.template == template)
                .order_by(MailMessage.created_at.desc())
            )
            .scalars()
            .first()
        )


def test_register_logs_in_and_queues_verification(services, ctx):
    result = services.auth.register(
        ctx, {"email": "Ada@Example.com", "password": STRONG, "first_name": "Ada"}
    )
    assert result.user.roles == ["user"] and result.user.email_verified is False
    assert result.tokens.expires_in == 900 and result.tokens.token_type == "Bearer"
    assert actor_of(services, result).user_id == result.user.id
    mail = _last_mail(services, "verify_email")
    assert mail.to_addr == "ada@example.com" and "token=" in mail.context["link"]
    with pytest.raises(errors.EmailExists):
        services.auth.register(ctx, {"email": "ADA@example.com", "password": STRONG})


def test_register_refuses_unknown_fields_and_can_be_disabled(make_services, ctx):
    services = make_services()
    with pytest.raises(errors.ValidationError):
        services.auth.register(
            ctx, {"email": "a@example.com", "password": STRONG, "roles": ["admin"]}
        )
    closed = make_services(allow_registration=False)
    with pytest.raises(errors.PermissionDenied):
        closed.auth.register(ctx, {"email": "a@example.com", "password": STRONG})


def test_login_by_email_or_username(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com", username="ada")
    assert services.auth.login(ctx, {"username": "ADA", "password": STRONG}).user.username == "ada"
    assert login(services, ctx, "ADA@example.com").user.last_login_at is not None


def test_unknown_and_wrong_password_look_the_same(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    with pytest.raises(errors.InvalidCredentials) as wrong:
        login(services, ctx, "ada@example.com", "Wrong-Passw0rd")
    with pytest.raises(errors.InvalidCredentials) as unknown:
        login(services, ctx, "nobody@example.com", "Wrong-Passw0rd")
    assert wrong.value.to_dict() == unknown.value.to_dict()


def test_lockout_applies_to_unknown_identifiers_too(make_services, operator, ctx):
    services = make_services(lockout_threshold=3)
    for email in ("ada@example.com", "ghost@example.com"):
        if email == "ada@example.com":
            make_user(services, operator, ctx, email)
        outcomes = []
        for _ in range(4):
            try:
                login(services, ctx, email, "Wrong-Passw0rd")
            except errors.DomainError as exc:
                outcomes.append(exc.code)
        assert outcomes == ["INVALID_CREDENTIALS"] * 2 + ["ACCOUNT_LOCKED"] * 2
    with pytest.raises(errors.AccountLocked) as info:
        login(services, ctx, "ada@example.com")  # right password, still locked
    assert info.value.details["locked_until"].endswith("Z")
    # The identifier is blocked, not the account: status "locked" lists admin locks.
    assert services.user_reads.list(operator, {"status": "locked"}).data == []


def test_success_resets_failure_count(make_services, operator, ctx):
    services = make_services(lockout_threshold=3)
    make_user(services, operator, ctx, "ada@example.com")
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials):
            login(services, ctx, "ada@example.com", "Wrong-Passw0rd")
    login(services, ctx, "ada@example.com")
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials):
            login(services, ctx, "ada@example.com", "Wrong-Passw0rd")


def test_hash_is_upgraded_when_cost_changes(make_services, operator, ctx):
    old = make_services(bcrypt_rounds=4)
    user = make_user(old, operator, ctx, "ada@example.com")
    new = make_services(bcrypt_rounds=5)
    login(new, ctx, "ada@example.com")
    with new.db.read() as s:
        stored = s.get(User, user.id).password_hash
    assert passwords.hash_rounds(stored) == 5
    login(new, ctx, "ada@example.com")


def test_inactive_account_with_right_password_is_disabled(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    services.users.update(operator, ctx, str(user.id), {"is_active": False})
    with pytest.raises(errors.AccountDisabled):
        login(services, ctx, "ada@example.com")
    with pytest.raises(errors.InvalidCredentials):
        login(services, ctx, "ada@example.com", "Wrong-Passw0rd")


def test_refresh_rotates_and_spends_the_old_token(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    first = login(services, ctx, "ada@example.com").tokens
    second = services.auth.refresh(ctx, {"refresh_token": first.refresh_token}).tokens
    assert second.refresh_token != first.refresh_token
    assert len(second.refresh_token) >= 22  # >= 128 bits, url-safe base64
    assert actor_of(services, type("R", (), {"tokens": second})).user_id is not None
    third = services.auth.refresh(ctx, {"refresh_token": second.refresh_token}).tokens
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)
    with services.db.read() as s:
        hashes = set(s.execute(select(RefreshToken.token_hash)).scalars())
    assert not {first.refresh_token, second.refresh_token, third.refresh_token} & hashes


def test_reuse_within_grace_gets_the_same_successor(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    first = login(services, ctx, "ada@example.com").tokens
    a = services.auth.refresh(ctx, {"refresh_token": first.refresh_token}).tokens
    b = services.auth.refresh(ctx, {"refresh_token": first.refresh_token}).tokens
    assert a.refresh_token == b.refresh_token


def test_reuse_after_grace_revokes_the_family(make_services, clock, operator, ctx):
    services = make_services(refresh_reuse_grace=4, clock=clock)
    make_user(services, operator, ctx, "ada@example.com")
    result = login(services, ctx, "ada@example.com")
    successor = services.auth.refresh(ctx, {"refresh_token": result.tokens.refresh_token}).tokens
    clock.advance(seconds=5)  # the rotation happened longer ago than the grace
    with pytest.raises(errors.TokenReused):
        services.auth.refresh(ctx, {"refresh_token": result.tokens.refresh_token})
    with pytest.raises(errors.AuthenticationError):
        services.auth.refresh(ctx, {"refresh_token": successor.refresh_token})
    with pytest.raises(errors.AuthenticationError):
        services.auth.authenticate_token(successor.access_token)
    actions = [e.action for e in services.audit.query(operator).data]
    assert "session.revoked" in actions


def test_unknown_refresh_token_is_unauthorized(services, ctx):
    with pytest.raises(errors.AuthenticationError) as info:
        services.auth.refresh(ctx, {"refresh_token": "made-up"})
    assert info.value.code == "UNAUTHORIZED"


def test_access_token_checks(services, operator, ctx):
    import jwt

    make_user(services, operator, ctx, "ada@example.com")
    token = login(services, ctx, "ada@example.com").tokens.access_token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert {"exp", "iat", "sub", "sid", "jti", "typ"} <= set(claims)
    forged_none = jwt.encode({**claims}, key=None, algorithm="none")
    wrong_key = jwt.encode(claims, "x" * 32, algorithm="HS256")
    expired = jwt.encode({**claims, "exp": 1}, services.keys.jwt_key(), algorithm="HS256")
    no_type = jwt.encode(
        {k: v for k, v in claims.items() if k != "typ"}, services.keys.jwt_key(), algorithm="HS256"
    )
    for bad in (forged_none, wrong_key, expired, no_type, "garbage", ""):
        with pytest.raises(errors.AuthenticationError):
            services.auth.authenticate_token(bad)


def test_jwt_secret_is_generated_once_and_shared(make_services):
    a, b = make_services(), make_services()
    assert a.keys.jwt_key() == b.keys.jwt_key()
    assert len(a.keys.jwt_key()) >= 32


def test_logout_revokes_at_once(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    one = login(services, ctx, "ada@example.com")
    two = login(services, ctx, "ada@example.com")
    actor = actor_of(services, one)
    services.auth.logout(actor, ctx, {"refresh_token": one.tokens.refresh_token})
    with pytest.raises(errors.AuthenticationError):
        services.auth.authenticate_token(one.tokens.access_token)
    with pytest.raises(errors.AuthenticationError):
        services.auth.refresh(ctx, {"refresh_token": one.tokens.refresh_token})
    assert actor_of(services, two).user_id == actor.user_id


def test_change_password_revokes_other_sessions(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    here = login(services, ctx, "ada@example.com")
    elsewhere = login(services, ctx, "ada@example.com")
    actor = actor_of(services, here)
    with pytest.raises(errors.ValidationError):
        services.auth.change_password(
            actor, ctx, {"current_password": "Wrong-Passw0rd", "new_password": "N3w-Password!x"}
        )
    services.auth.change_password(
        actor, ctx, {"current_password": STRONG, "new_password": "N3w-Password!x"}
    )
    assert actor_of(services, here).user_id == actor.user_id
    with pytest.raises(errors.AuthenticationError):
        actor_of(services, elsewhere)
    login(services, ctx, "ada@example.com", "N3w-Password!x")
    assert _last_mail(services, "password_changed").to_addr == "ada@example.com"


def _reset_token(services):
    return _last_mail(services, "password_reset").context["token"]


def test_forgot_and_reset_password(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    session = login(services, ctx, "ada@example.com")
    assert services.auth.forgot_password(ctx, {"email": "nobody@example.com"}) is None
    assert _last_mail(services, "password_reset") is None
    services.auth.forgot_password(ctx, {"email": "ADA@example.com"})
    first = _reset_token(services)
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    second = _reset_token(services)
    with pytest.raises(errors.InvalidToken):  # a new request voids the previous one
        services.auth.reset_password(ctx, {"token": first, "new_password": "N3w-Password!x"})
    with pytest.raises(errors.ValidationError):
        services.auth.reset_password(ctx, {"token": second, "new_password": "weak"})
    services.auth.reset_password(ctx, {"token": second, "new_password": "N3w-Password!x"})
    with pytest.raises(errors.InvalidToken):  # single use
        services.auth.reset_password(ctx, {"token": second, "new_password": "Other-Passw0rd!"})
    with pytest.raises(errors.AuthenticationError):
        actor_of(services, session)
    login(services, ctx, "ada@example.com", "N3w-Password!x")


def test_expired_reset_token_is_invalid(make_services, clock, operator, ctx):
    services = make_services(clock=clock)
    make_user(services, operator, ctx, "ada@example.com")
    services.auth.forgot_password(ctx, {"email": "ada@example.com"})
    clock.advance(seconds=services.settings.reset_token_ttl)  # it ends at its time
    with pytest.raises(errors.InvalidToken):
        services.auth.reset_password(
            ctx, {"token": _reset_token(services), "new_password": "N3w-Password!x"}
        )


def test_invitation_sets_password_and_verifies(services, operator, ctx):
    services.users.create(operator, ctx, {"email": "new@example.com"})
    token = _last_mail(services, "invitation").context["token"]
    services.auth.reset_password(ctx, {"token": token, "new_password": "N3w-Password!x"})
    result = login(services, ctx, "new@example.com", "N3w-Password!x")
    assert result.user.email_verified is True


def test_verify_email_and_resend(services, ctx):
    result = services.auth.register(ctx, {"email": "ada@example.com", "password": STRONG})
    first = _last_mail(services, "verify_email").context["token"]
    actor = actor_of(services, result)
    services.auth.resend_verification(actor, ctx)
    second = _last_mail(services, "verify_email").context["token"]
    with pytest.raises(errors.InvalidToken):
        services.auth.verify_email(ctx, {"token": first})
    services.auth.verify_email(ctx, {"token": second})
    assert services.auth.me(actor).email_verified is True
    with pytest.raises(errors.InvalidToken):
        services.auth.verify_email(ctx, {"token": second})


def test_verification_token_dies_with_an_email_change(services, operator, ctx):
    result = services.auth.register(ctx, {"email": "ada@example.com", "password": STRONG})
    token = _last_mail(services, "verify_email").context["token"]
    services.users.update(operator, ctx, str(result.user.id), {"email": "ada2@example.com"})
    with pytest.raises(errors.InvalidToken):
        services.auth.verify_email(ctx, {"token": token})


def test_me_and_update_me(services, ctx):
    result = services.auth.register(ctx, {"email": "ada@example.com", "password": STRONG})
    actor = actor_of(services, result)
    assert services.auth.me(actor).email == "ada@example.com"
    updated = services.auth.update_me(actor, ctx, {"last_name": "Lovelace"})
    assert updated.last_name == "Lovelace"
    with pytest.raises(errors.ValidationError):
        services.auth.update_me(actor, ctx, {"email": "other@example.com"})


def test_sessions_list_and_revoke(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    login(services, ctx, "ada@example.com")
    other_ctx = RequestContext(ip="10.0.0.9", user_agent="curl/8")
    login(services, other_ctx, "ada@example.com")
    sessions = services.sessions.list(operator, str(user.id))
    assert len(sessions) == 2 and {s.ip for s in sessions} == {"127.0.0.1", "10.0.0.9"}
    services.sessions.revoke(operator, ctx, str(sessions[0].id))
    assert len(services.sessions.list(operator, str(user.id))) == 1
    assert services.sessions.revoke_all(operator, ctx, str(user.id)) == 1
    assert services.sessions.list(operator, str(user.id)) == []
