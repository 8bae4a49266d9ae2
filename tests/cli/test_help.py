"""Every command has help with an example, and docs/cli.md is generated from that help."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from usermgmt.cli import docs
from usermgmt.cli.app import PROG_NAME, SUB_APPS, app

COMMANDS = [path for path, _ in docs.commands()]
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_every_contract_command_exists():
    names = {" ".join(path[1:]) for path in COMMANDS}
    expected = {
        "info", "serve", "tui",
        "users create", "users list", "users ensure", "users show", "users update",
        "users delete", "users restore", "users lock", "users unlock", "users set-password",
        "users import", "users export",
        "roles list", "roles grant", "roles revoke",
        "sessions list", "sessions revoke",
        "audit list", "audit verify",
        "tokens purge",
        "keys create", "keys list", "keys revoke",
        "mfa status", "mfa reset",
        "mail deliver", "mail list", "mail retry",
        "webhooks create", "webhooks list", "webhooks show", "webhooks update",
        "webhooks delete", "webhooks test", "webhooks deliveries", "webhooks retry",
        "webhooks replay", "webhooks deliver",
        "db upgrade", "db downgrade", "db current", "db check",
        "login", "logout", "context list", "context use", "context show", "context remove",
    }  # fmt: skip
    assert expected <= names, expected - names
    assert [name for name, _ in SUB_APPS] == [
        "users", "roles", "sessions", "audit", "tokens", "keys", "mfa", "mail", "webhooks",
        "db", "context",
    ]  # fmt: skip


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path):
    result = CliRunner().invoke(app, [*path[1:], "--help"], prog_name=PROG_NAME)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Usage: {' '.join(path)} ")
    _usage, _, description = result.stdout.partition("\n\n")
    assert description.strip(), "no description"
    if len(path) == 1 or path[-1] in {name for name, _ in SUB_APPS}:
        return  # groups list their commands
    assert "Example" in result.stdout, f"{' '.join(path)} --help has no example"


# (A webhook has a signing secret the server makes, an API key a secret it makes:
# never a password.)
@pytest.mark.parametrize(
    "path", [p for p in COMMANDS if p[1:2] == ["users"] and p[-1] in {"create", "set-password"}]
)
def test_no_command_takes_a_password_on_the_command_line(path):
    result = CliRunner().invoke(app, [*path[1:], "--help"], prog_name=PROG_NAME)
    options = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  -")]
    assert "--password" not in options and "--password-stdin" in result.stdout


def test_docs_reference_is_up_to_date():
    assert docs.main(["--check", str(DOC)]) == 0, (
        "docs/cli.md is stale: run python -m usermgmt.cli.docs --write docs/cli.md"
    )


def test_docs_check_notices_a_stale_reference(tmp_path):
    stale = tmp_path / "cli.md"
    stale.write_text(f"# Guide\n\n{docs.BEGIN}\nold\n{docs.END}\n")
    assert docs.main(["--check", str(stale)]) == 1
    assert docs.main(["--write", str(stale)]) == 0
    assert stale.read_text().startswith("# Guide\n\n")
    assert docs.main(["--check", str(stale)]) == 0
