"""`usermgmt mfa status|reset` embedded and remote (usermgmt.cli.commands.mfa over the
ports, usermgmt.client.backend.RemoteMfa), and `usermgmt login` answering a second-factor
challenge (usermgmt.cli.remote), against a live server on both databases."""

from __future__ import annotations

import time

import httpx
import pyotp

from .conftest import PASSWORD, invoke, unique_email


def enrol(served) -> tuple[str, str, str, list[str]]:
    """A new account with a confirmed second factor: (email, access token, secret, codes)."""
    email = unique_email("mfa")
    with httpx.Client(base_url=served.url) as http:
        made = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})
        assert made.status_code == 201, made.text
        headers = {"Authorization": f"Bearer {made.json()['tokens']['access_token']}"}
        secret = http.post("/api/v1/auth/mfa/totp/setup", headers=headers).json()["secret"]
        confirmed = http.post(
            "/api/v1/auth/mfa/totp/confirm",
            headers=headers,
            json={"code": pyotp.TOTP(secret).now()},
        )
        assert confirmed.status_code == 200, confirmed.text
    return email, headers["Authorization"], secret, confirmed.json()["recovery_codes"]


def test_status_and_reset(run, served):
    email, bearer, _secret, _codes = enrol(served)
    status = run("mfa", "status", email, "-o", "json")
    assert status.exit_code == 0, status.stderr
    assert status.json()["mfa_enabled"] is True and status.json()["recovery_codes_left"] == 10
    assert run("users", "show", email, "-o", "json").json()["mfa_enabled"] is True
    assert "second factor enabled" in run("mfa", "status", email).stdout
    reset = run("mfa", "reset", email, "--yes")
    assert reset.exit_code == 0, reset.stderr
    assert run("mfa", "status", email, "-o", "json").json()["mfa_enabled"] is False
    again = run("mfa", "reset", email, "--yes")
    assert again.exit_code == 4 and "CONFLICT" in again.stderr
    # The reset ended the user's sessions.
    me = httpx.get(f"{served.url}/api/v1/auth/me", headers={"Authorization": bearer})
    assert me.status_code == 401
    assert run("mfa", "status", "nobody@example.com").exit_code == 3


def test_remote_login_reads_the_code_from_the_second_line(served, config_home):
    email, _bearer, secret, codes = enrol(served)
    args = (
        "login",
        "--server",
        served.url,
        "--context",
        "me",
        "--email",
        email,
        "--password-stdin",
    )
    # The step after the confirmation's: accepted (±1 step), and not a replay.
    code = pyotp.TOTP(secret).at(time.time() + 30)
    done = invoke(*args, input=f"{PASSWORD}\n{code}\n")
    assert done.exit_code == 0, done.stderr
    me = invoke("--context", "me", "users", "show", email, "-o", "json")
    assert me.exit_code == 0 and me.json()["mfa_enabled"] is True
    replay = invoke(*args, input=f"{PASSWORD}\n{code}\n")
    assert replay.exit_code == 7 and "INVALID_MFA_CODE" in replay.stderr
    assert invoke(*args, input=f"{PASSWORD}\n{codes[0]}\n").exit_code == 0  # a recovery code
    missing = invoke(*args, input=f"{PASSWORD}\n")
    assert missing.exit_code == 2 and "second line" in missing.stderr
    # Nothing of the second factor reaches the server's log.
    log = served.server.log()
    assert secret not in log and not any(c in log for c in codes)
