"""`users ensure` sets a password as `set-password` does; `users unlock` lifts login blocks."""

from __future__ import annotations

import pytest
from conftest import STRONG_PASSWORD

from usermgmt.core.context import RequestContext
from usermgmt.core.errors import AccountLocked, InvalidCredentials

NEW = "An0ther-Passw0rd"


def _account_events(cli, email):
    events = cli("audit", "list", "--target", email, "--action", "user.*", "-o", "json").json()
    return [(e["action"], e["changes"]) for e in reversed(events)]


def test_ensure_with_a_new_password_is_audited_and_notified_like_set_password(cli):
    for email in ("set@example.com", "ensure@example.com"):
        made = cli("users", "create", "--email", email, "--password-stdin", input=STRONG_PASSWORD)
        assert made.exit_code == 0, made.stderr

    assert (
        cli("users", "set-password", "set@example.com", "--password-stdin", input=NEW).exit_code
        == 0
    )
    ensured = cli("users", "ensure", "--email", "ensure@example.com", "--password-stdin", input=NEW)
    assert (ensured.exit_code, ensured.stdout) == (0, "updated\n")

    by_set = _account_events(cli, "set@example.com")[1:]
    by_ensure = _account_events(cli, "ensure@example.com")[1:]
    assert by_ensure == by_set
    assert [action for action, _ in by_ensure] == ["user.password_set"]
    mails = cli("mail", "list", "-o", "json").json()
    notices = sorted(m["to_addr"] for m in mails if m["template"] == "password_changed")
    assert notices == ["ensure@example.com", "set@example.com"]


def test_unlock_lifts_the_login_block_of_failed_logins(cli, make_services):
    services = make_services(lockout_threshold=2)
    made = cli(
        "users", "create", "--email", "ann@example.com", "--password-stdin", input=STRONG_PASSWORD
    )
    assert made.exit_code == 0
    ctx = RequestContext()
    for error in (InvalidCredentials, AccountLocked):
        with pytest.raises(error):
            services.auth.login(ctx, {"email": "ann@example.com", "password": "Wrong-Passw0rd"})
    # Blocked, but not an admin lock: status "locked" lists admin locks only.
    assert cli("users", "list", "--status", "locked", "-q").stdout == ""
    blocked = cli("audit", "list", "--action", "user.login_blocked", "-o", "json").json()
    assert [e["actor_label"] for e in blocked] == ["system:lockout"]

    unlocked = cli("users", "unlock", "ann@example.com")
    assert unlocked.exit_code == 0, unlocked.stderr
    login = services.auth.login(ctx, {"email": "ann@example.com", "password": STRONG_PASSWORD})
    assert login.user.email == "ann@example.com"
    last = cli("audit", "list", "--action", "user.unlocked", "-o", "json").json()[0]
    assert last["changes"] == {"login_blocks_cleared": 1}
