"""`usermgmt keys …` and `users create --service` (both databases): the secret printed
once in every format, listings, revocation, exit codes."""

from __future__ import annotations

import csv
import io

import pytest


@pytest.fixture
def bot(cli):
    made = cli(
        "users",
        "create",
        "--service",
        "--username",
        "purge-bot",
        "--email",
        "ops@example.com",
        "--role",
        "admin",
        "-o",
        "json",
    )
    assert made.exit_code == 0, made.stderr
    return made.json()


def test_service_account_is_created_without_a_password_and_shown_as_such(cli, bot, services):
    assert bot["kind"] == "service" and bot["username"] == "purge-bot"
    table = cli("users", "list").stdout
    row = next(line for line in table.splitlines() if "purge-bot" in line)
    assert "service" in row.split()
    assert "kind" in cli("users", "list", "-o", "csv").stdout.splitlines()[0].split(",")
    no_name = cli("users", "create", "--service", "--email", "x@example.com")
    assert no_name.exit_code == 2 and "username" in no_name.stderr
    with_password = cli(
        "users", "create", "--service", "--username", "y-bot", "--email", "y@example.com",
        "--password-stdin", input="Corr3ct-Horse-Battery\n",
    )  # fmt: skip
    assert with_password.exit_code == 2 and "no password" in with_password.stderr
    assert cli("mail", "list", "-o", "json").json() == []


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv", "quiet"])
def test_create_prints_the_secret_once_in_every_format(cli, bot, services, fmt):
    args = ["keys", "create", "--name", "nightly", "--scope", "maintenance", "--user", "purge-bot"]
    made = cli(*args, *(["-q"] if fmt == "quiet" else ["-o", fmt]))
    assert made.exit_code == 0, made.stderr
    if fmt == "quiet":
        secret = made.stdout.strip()
    elif fmt == "json":
        secret = made.json()["secret"]
        assert made.json()["key"]["scopes"] == ["maintenance"]
    elif fmt == "jsonl":
        secret = made.jsonl()[0]["secret"]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(made.stdout)))
        secret = rows[0]["secret"]
        assert rows[0]["owner"] == "purge-bot"
    else:
        line = next(line for line in made.stdout.splitlines() if "secret" in line)
        secret = line.split()[-1]
    assert secret.startswith("umk_") and len(secret) == 47
    services.api_keys.authenticate(secret, _ctx())
    listed = cli("keys", "list", "--user", "purge-bot", "-o", "json")
    assert secret not in listed.stdout and listed.json()[0]["name"] == "nightly"


def test_list_and_revoke(cli, bot, services):
    for name in ("a", "b"):
        assert cli("keys", "create", "--name", name, "--scope", "users:read", "--user",
                   "purge-bot", "--expires-in", "30").exit_code == 0  # fmt: skip
    table = cli("keys", "list", "--all")
    assert table.exit_code == 0
    assert "purge-bot (service)" in table.stdout and "users:read" in table.stdout
    ids = cli("keys", "list", "--user", "purge-bot", "-q").stdout.split()
    assert len(ids) == 2
    assert cli("keys", "revoke", ids[0]).exit_code == 0
    assert cli("keys", "revoke", ids[0]).exit_code == 0  # already revoked: nothing to do
    states = {k["id"]: k["state"] for k in cli("keys", "list", "-o", "json").json()}
    assert states == {ids[0]: "revoked", ids[1]: "active"}
    audit = cli("audit", "list", "--action", "api_key.*", "-o", "json").json()
    assert sorted(e["action"] for e in audit) == [
        "api_key.created",
        "api_key.created",
        "api_key.revoked",
    ]


def test_exit_codes(cli, bot):
    base = ["keys", "create", "--name", "x", "--scope", "users:read"]
    assert cli(*base).exit_code == 2  # no --user when working on the database
    assert cli(*base, "--user", "nobody@example.com").exit_code == 3
    assert (
        cli("keys", "create", "--name", "x", "--scope", "all", "--user", "purge-bot").exit_code == 2
    )
    assert cli(*base, "--user", "purge-bot", "--expires-in", "0").exit_code == 2
    assert cli("keys", "revoke", "00000000-0000-4000-8000-000000000000").exit_code == 3
    assert cli("keys", "revoke", "not-an-id").exit_code == 3
    assert cli("keys", "list", "--all", "--user", "purge-bot").exit_code == 2
    cli("users", "create", "--email", "root@example.com", "--role", "admin", "--no-password")
    assert cli("users", "update", "purge-bot", "--inactive").exit_code == 0
    assert cli(*base, "--user", "purge-bot").exit_code == 4


def _ctx():
    from usermgmt.core.context import RequestContext

    return RequestContext(ip="127.0.0.1")
