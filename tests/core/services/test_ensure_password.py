"""`ensure` that changes a password is audited and notified exactly as set-password."""

import pytest
from sqlalchemy import select

from usermgmt.core import errors
from usermgmt.core.audit import REDACTED
from usermgmt.core.models import AuthSession, MailMessage

from ..helpers import STRONG, login, make_user

NEW = "N3w-Password!x"


def _mails(services, template="password_changed"):
    with services.db.read() as s:
        return (
            s.execute(select(MailMessage.to_addr).where(MailMessage.template == template))
            .scalars()
            .all()
        )


def _trail(services, operator, user):
    """The user's account events after its creation (logins left out)."""
    events = services.audit.query(operator, {"target_id": str(user.id), "action": "user.*"})
    return [(e.action, e.changes) for e in reversed(events.data)][1:]


def test_ensure_sets_a_changed_password_like_set_password(services, operator, ctx):
    by_set = make_user(services, operator, ctx, "set@example.com")
    by_ensure = make_user(services, operator, ctx, "ensure@example.com")
    for email in ("set@example.com", "ensure@example.com"):
        login(services, ctx, email)  # a session that the new password ends

    services.users.set_password(operator, ctx, str(by_set.id), NEW)
    outcome, _ = services.users.ensure(
        operator, ctx, {"email": "ensure@example.com", "password": NEW}
    )

    assert outcome == "updated"
    expected = [("user.password_set", {"password": REDACTED, "sessions_revoked": 1})]
    assert _trail(services, operator, by_set) == expected
    assert _trail(services, operator, by_ensure) == expected
    assert sorted(_mails(services)) == ["ensure@example.com", "set@example.com"]
    with services.db.read() as s:
        reasons = s.execute(select(AuthSession.revoke_reason)).scalars().all()
    assert reasons == ["password_set", "password_set"]
    assert login(services, ctx, "ensure@example.com", NEW).user.id == by_ensure.id
    assert services.audit.verify(operator).ok


def test_ensure_with_other_changes_audits_both(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    spec = {"email": "ada@example.com", "first_name": "Ada", "password": NEW}
    assert services.users.ensure(operator, ctx, spec)[0] == "updated"
    assert _trail(services, operator, user) == [
        ("user.updated", {"first_name": {"before": None, "after": "Ada"}}),
        ("user.password_set", {"password": REDACTED, "sessions_revoked": 0}),
    ]
    # The same password again changes nothing, tells nobody and audits nothing.
    assert services.users.ensure(operator, ctx, spec)[0] == "unchanged"
    assert len(_trail(services, operator, user)) == 2
    assert _mails(services) == ["ada@example.com"]


def test_ensure_applies_the_password_policy(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    with pytest.raises(errors.ValidationError):
        services.users.ensure(operator, ctx, {"email": "ada@example.com", "password": "short"})
    assert login(services, ctx, "ada@example.com", STRONG)


def test_ensure_deactivating_ends_sessions_like_update(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    held = login(services, ctx, "ada@example.com").tokens
    services.users.ensure(operator, ctx, {"email": "ada@example.com", "is_active": False})
    services.users.ensure(operator, ctx, {"email": "ada@example.com", "is_active": True})
    # Reactivating does not bring the old session back.
    with pytest.raises(errors.AuthenticationError, match="Session revoked"):
        services.auth.authenticate_token(held.access_token)
