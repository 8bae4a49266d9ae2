"""The second factor in the core (usermgmt.core.services.mfa, with the login of
usermgmt.core.services.auth and the keys of usermgmt.core.mfa_keys): enrolment, the
login challenge, replay and skew on the injected clock, recovery codes, lockout,
the role policy, the admin reset, and secrets kept out of the database, the audit
log and the logs."""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, text

from tests.core.helpers import STRONG, actor_of, login, make_user
from usermgmt.core.errors import (
    AccountLocked,
    ConfigurationError,
    Conflict,
    InvalidMfaCode,
    ValidationError,
)
from usermgmt.core.mfa_keys import key_file
from usermgmt.core.mfa_schemas import MfaChallenge
from usermgmt.core.models import AuditEvent, MailMessage, MfaTotp
from usermgmt.core.schemas import AuthResult

# A step boundary, so that "one step later" is exact.
START = datetime(2026, 12, 2, 5, 0, 0, tzinfo=UTC)


@pytest.fixture
def mfa_clock(clock):
    clock.set(START)
    return clock


@pytest.fixture
def svc(make_services, mfa_clock):
    return make_services(clock=mfa_clock)


def code_at(secret: str, when: datetime) -> str:
    return pyotp.TOTP(secret).at(when)


def enrol(svc, operator, ctx, email="ada@example.com", roles=("user",)):
    """A user with a confirmed second factor: (secret, recovery codes)."""
    make_user(svc, operator, ctx, email, roles=roles)
    actor = actor_of(svc, login(svc, ctx, email))
    setup = svc.mfa.setup(actor, ctx)
    codes = svc.mfa.confirm(actor, ctx, {"code": code_at(setup.secret, svc.clock.now())})
    return setup.secret, codes.recovery_codes


def challenge(svc, ctx, email="ada@example.com") -> str:
    answer = login(svc, ctx, email)
    assert isinstance(answer, MfaChallenge)
    return answer.mfa_token


def test_setup_is_inactive_until_confirmed(svc, operator, ctx):
    make_user(svc, operator, ctx, "ada@example.com")
    actor = actor_of(svc, login(svc, ctx, "ada@example.com"))
    setup = svc.mfa.setup(actor, ctx)
    assert setup.otpauth_uri.startswith("otpauth://totp/")
    assert f"secret={setup.secret}" in setup.otpauth_uri
    assert setup.qr_svg.startswith("<svg")
    assert isinstance(login(svc, ctx, "ada@example.com"), AuthResult)  # not active yet
    with pytest.raises(InvalidMfaCode):
        svc.mfa.confirm(actor, ctx, {"code": code_at(setup.secret, START - timedelta(minutes=5))})
    codes = svc.mfa.confirm(actor, ctx, {"code": code_at(setup.secret, START)})
    assert len(codes.recovery_codes) == 10 and len(set(codes.recovery_codes)) == 10
    assert svc.auth.me(actor).mfa_enabled is True
    with pytest.raises(Conflict):
        svc.mfa.setup(actor, ctx)


def test_login_answers_a_challenge_and_verify_completes_it(svc, operator, ctx, mfa_clock):
    secret, _codes = enrol(svc, operator, ctx)
    token = challenge(svc, ctx)
    mfa_clock.advance(seconds=30)
    result = svc.mfa.verify(ctx, {"mfa_token": token, "code": code_at(secret, mfa_clock.now())})
    assert result.user.mfa_enabled and result.tokens.access_token
    assert actor_of(svc, result).user_id == result.user.id
    with pytest.raises(InvalidMfaCode):  # the challenge is single use
        svc.mfa.verify(ctx, {"mfa_token": token, "code": code_at(secret, mfa_clock.now())})


def test_a_used_step_is_refused(svc, operator, ctx, mfa_clock):
    secret, _codes = enrol(svc, operator, ctx)
    # The step that confirmed the enrolment cannot sign in.
    with pytest.raises(InvalidMfaCode):
        svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "code": code_at(secret, START)})
    mfa_clock.advance(seconds=30)
    code = code_at(secret, mfa_clock.now())
    svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "code": code})
    with pytest.raises(InvalidMfaCode):
        svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "code": code})


@pytest.mark.parametrize("offset,accepted", [(-1, True), (1, True), (-2, False), (2, False)])
def test_clock_skew(svc, operator, ctx, mfa_clock, offset, accepted):
    secret, _codes = enrol(svc, operator, ctx)
    mfa_clock.advance(minutes=5)
    code = code_at(secret, mfa_clock.now() + timedelta(seconds=30 * offset))
    attempt = {"mfa_token": challenge(svc, ctx), "code": code}
    if accepted:
        assert svc.mfa.verify(ctx, attempt).tokens
    else:
        with pytest.raises(InvalidMfaCode):
            svc.mfa.verify(ctx, attempt)


def test_recovery_code_is_single_use_audited_and_mailed(svc, operator, ctx):
    _secret, codes = enrol(svc, operator, ctx)
    typed = codes[0].upper().replace("-", " ")  # as a person might type it
    assert svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": typed})
    with pytest.raises(InvalidMfaCode):
        svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": codes[0]})
    assert svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": codes[1]})
    with svc.db.read() as s:
        actions = s.execute(select(AuditEvent.action)).scalars().all()
        mails = s.execute(select(MailMessage.template)).scalars().all()
    assert actions.count("user.mfa_recovery_code_used") == 2
    assert mails.count("mfa_recovery_code_used") == 2 and "mfa_enabled" in mails


def test_regenerating_codes_voids_the_old_ones(svc, operator, ctx, mfa_clock):
    secret, old = enrol(svc, operator, ctx)
    actor = actor_of(
        svc, svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": old[0]})
    )
    mfa_clock.advance(seconds=30)
    new = svc.mfa.regenerate_recovery_codes(actor, ctx, {"code": code_at(secret, mfa_clock.now())})
    assert not set(new.recovery_codes) & set(old)
    with pytest.raises(InvalidMfaCode):
        svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": old[1]})
    assert svc.mfa.verify(
        ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": new.recovery_codes[0]}
    )


def test_wrong_codes_count_toward_the_identifiers_lockout(make_services, mfa_clock, operator, ctx):
    svc = make_services(clock=mfa_clock, lockout_threshold=3)
    secret, _codes = enrol(svc, operator, ctx)
    token = challenge(svc, ctx)
    for _ in range(2):
        with pytest.raises(InvalidMfaCode):
            svc.mfa.verify(ctx, {"mfa_token": token, "code": "000000"})
    with pytest.raises(AccountLocked):  # the third failure locks, like a third wrong password
        svc.mfa.verify(ctx, {"mfa_token": token, "code": "000000"})
    mfa_clock.advance(seconds=30)
    with pytest.raises(AccountLocked):  # even the right code waits for the lock
        svc.mfa.verify(ctx, {"mfa_token": token, "code": code_at(secret, mfa_clock.now())})
    with pytest.raises(AccountLocked):
        login(svc, ctx, "ada@example.com")


def test_a_right_password_does_not_clear_failures_before_the_code(
    make_services, mfa_clock, operator, ctx
):
    """Else a thief with the password could guess codes forever, re-entering it."""
    svc = make_services(clock=mfa_clock, lockout_threshold=3)
    enrol(svc, operator, ctx)
    for _ in range(2):
        with pytest.raises(InvalidMfaCode):
            svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "code": "123456"})
    with pytest.raises(AccountLocked):
        svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "code": "123456"})


def test_disable_needs_password_and_code(svc, operator, ctx, mfa_clock):
    secret, _codes = enrol(svc, operator, ctx)
    mfa_clock.advance(seconds=30)
    actor = actor_of(
        svc,
        svc.mfa.verify(
            ctx, {"mfa_token": challenge(svc, ctx), "code": code_at(secret, mfa_clock.now())}
        ),
    )
    mfa_clock.advance(seconds=30)
    code = code_at(secret, mfa_clock.now())
    with pytest.raises(ValidationError):
        svc.mfa.disable(actor, ctx, {"password": "Wrong-Passw0rd", "code": code})
    with pytest.raises(InvalidMfaCode):
        svc.mfa.disable(actor, ctx, {"password": STRONG, "code": "000000"})
    svc.mfa.disable(actor, ctx, {"password": STRONG, "code": code})
    assert isinstance(login(svc, ctx, "ada@example.com"), AuthResult)
    with svc.db.read() as s:
        assert s.get(MfaTotp, actor.user_id) is None


def test_policy_holds_a_session_back_until_enrolment(make_services, mfa_clock, operator, ctx):
    svc = make_services(clock=mfa_clock, mfa_required_roles="admin,moderator")
    make_user(svc, operator, ctx, "mod@example.com", roles=("moderator",))
    make_user(svc, operator, ctx, "plain@example.com")
    assert login(svc, ctx, "plain@example.com").mfa_enrolment_required is False
    result = login(svc, ctx, "mod@example.com")
    assert result.mfa_enrolment_required is True
    actor = actor_of(svc, result)
    assert actor.mfa_pending
    setup = svc.mfa.setup(actor, ctx)
    svc.mfa.confirm(actor, ctx, {"code": code_at(setup.secret, START)})
    assert not actor_of(svc, result).mfa_pending  # the same session is now a full one
    assert isinstance(login(svc, ctx, "mod@example.com"), MfaChallenge)


def test_admin_reset_ends_sessions_and_is_audited(svc, operator, ctx, mfa_clock):
    secret, _codes = enrol(svc, operator, ctx)
    mfa_clock.advance(seconds=30)
    result = svc.mfa.verify(
        ctx, {"mfa_token": challenge(svc, ctx), "code": code_at(secret, mfa_clock.now())}
    )
    user_id = result.user.id
    assert svc.mfa.status(operator, str(user_id)).recovery_codes_left == 10
    svc.mfa.reset(operator, ctx, str(user_id))
    with pytest.raises(Exception, match="revoked"):
        actor_of(svc, result)
    status = svc.mfa.status(operator, str(user_id))
    assert not status.mfa_enabled and status.recovery_codes_left == 0
    assert isinstance(login(svc, ctx, "ada@example.com"), AuthResult)
    with pytest.raises(Conflict):
        svc.mfa.reset(operator, ctx, str(user_id))
    with svc.db.read() as s:
        event = s.execute(
            select(AuditEvent).where(AuditEvent.action == "user.mfa_reset")
        ).scalar_one()
        mails = s.execute(select(MailMessage.template)).scalars().all()
    assert event.changes["mfa_enabled"] == {"before": True, "after": False}
    assert "mfa_reset" in mails


def test_secrets_are_encrypted_at_rest_and_never_logged(svc, operator, ctx, mfa_clock, caplog):
    caplog.set_level(logging.DEBUG)
    secret, codes = enrol(svc, operator, ctx)
    mfa_clock.advance(seconds=30)
    svc.mfa.verify(ctx, {"mfa_token": challenge(svc, ctx), "recovery_code": codes[0]})
    dump = []
    with svc.db.connect() as conn:
        for table in (
            "users",
            "mfa_totp",
            "mfa_recovery_codes",
            "mfa_challenges",
            "audit_events",
            "mail_outbox",
        ):
            dump += [repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}"))]
    everything = "\n".join(dump) + caplog.text
    assert secret not in everything
    for code in codes:
        assert code not in everything and code.replace("-", "") not in everything
    # Without USERMGMT_MFA_KEY the key is a private file in the data directory.
    assert stat.S_IMODE(os.stat(key_file()).st_mode) == 0o600


def test_a_configured_key_list_rotates(make_services, mfa_clock, operator, ctx):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    svc = make_services(clock=mfa_clock, mfa_key=old)
    secret, _codes = enrol(svc, operator, ctx)
    assert not key_file().exists()
    rotated = make_services(clock=mfa_clock, mfa_key=f"{new},{old}")
    mfa_clock.advance(seconds=30)
    token = challenge(rotated, ctx)
    assert rotated.mfa.verify(ctx, {"mfa_token": token, "code": code_at(secret, mfa_clock.now())})
    only_new = make_services(clock=mfa_clock, mfa_key=new)  # re-encrypted on use
    mfa_clock.advance(seconds=30)
    token = challenge(only_new, ctx)
    assert only_new.mfa.verify(ctx, {"mfa_token": token, "code": code_at(secret, mfa_clock.now())})


def test_purge_removes_spent_and_expired_challenges(svc, operator, ctx, mfa_clock):
    secret, _codes = enrol(svc, operator, ctx)
    spent = challenge(svc, ctx)
    mfa_clock.advance(seconds=30)
    svc.mfa.verify(ctx, {"mfa_token": spent, "code": code_at(secret, mfa_clock.now())})
    challenge(svc, ctx)  # live: kept
    assert svc.maintenance.purge(operator, ctx).counts["mfa_challenges"] == 1
    mfa_clock.advance(seconds=svc.settings.mfa_token_ttl + 1)
    assert svc.maintenance.purge(operator, ctx).counts["mfa_challenges"] == 1


def test_a_malformed_configured_key_is_a_configuration_error(
    make_services, mfa_clock, operator, ctx
):
    svc = make_services(clock=mfa_clock, mfa_key="not-a-fernet-key")
    make_user(svc, operator, ctx, "ada@example.com")
    actor = actor_of(svc, login(svc, ctx, "ada@example.com"))
    with pytest.raises(ConfigurationError, match="USERMGMT_MFA_KEY") as raised:
        svc.mfa.setup(actor, ctx)
    assert "not-a-fernet-key" not in str(raised.value)
