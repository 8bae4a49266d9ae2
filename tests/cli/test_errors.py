"""One error line, the contract's exit codes, no traceback unless --debug, secrets masked."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from usermgmt.cli.app import PROG_NAME, app
from usermgmt.cli.errors import EXIT_CODES, exit_code_for
from usermgmt.core import errors


@pytest.mark.parametrize(
    "error, code",
    [
        (errors.ValidationError(), 2),
        (errors.ConfigurationError(), 2),
        (errors.NotFound(), 3),
        (errors.EmailExists(), 4),
        (errors.UsernameExists(), 4),
        (errors.Conflict(), 4),
        (errors.AccountLocked(), 4),
        (errors.DatabaseUnavailable(), 5),
        (errors.SchemaOutOfDate(), 5),
        (errors.AuditChainBroken(), 6),
        (errors.PermissionDenied(), 7),
        (errors.AccountDisabled(), 7),
        (errors.AuthenticationError(), 7),
        (errors.InvalidCredentials(), 7),
        (errors.TokenReused(), 7),
        (errors.NotLoggedIn(), 7),
        (errors.UnexpectedDatabaseError(), 1),
        (errors.DomainError(), 1),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_exit_code_table(error, code):
    assert exit_code_for(error) == code


def test_every_domain_error_has_an_exit_code():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in subclasses(errors.DomainError):
        assert any(issubclass(cls, known) for known in EXIT_CODES), cls


def test_usage_errors_are_one_line(cli_at, tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    for args in (["users", "list", "--bogus"], ["users", "nosuch"], ["users", "show"]):
        run = cli_at(url, *args)
        assert run.exit_code == 2
        assert run.stderr.count("\n") == 1, run.stderr
        assert run.stderr.startswith("error: USAGE_ERROR: ")
        assert "--help" in run.stderr


@pytest.mark.parametrize("args", [[], ["users"], ["--debug", "audit"]])
def test_a_group_without_a_command_shows_its_help_on_stderr(args):
    """No command given: the group's help, as it is, on stderr, and exit 2 (not an error line)."""
    run = CliRunner().invoke(app, args, prog_name=PROG_NAME)
    asked = CliRunner().invoke(app, [*args, "--help"], prog_name=PROG_NAME)
    assert run.exit_code == 2
    assert run.stdout == ""
    assert "Commands:" in run.stderr
    assert run.stderr == asked.stdout


def test_unreachable_database_is_exit_5_with_the_password_masked(cli_at):
    url = "postgresql+psycopg://admin:hunter22@127.0.0.1:9/users"
    run = cli_at(url, "users", "list")
    assert run.exit_code == 5
    assert run.stderr.count("\n") == 1
    assert "hunter22" not in run.stderr
    assert "admin:***@127.0.0.1:9/users" in run.error_line
    assert "is the server running" in run.error_line or "server is running" in run.error_line


@pytest.mark.parametrize(
    "url", ["not a url", "mysql://u:hunter22@h/db", "postgresql+psycopg2://u@h/db"]
)
def test_a_bad_database_url_is_exit_5(cli_at, url):
    run = cli_at(url, "users", "list", "-o", "json")
    assert run.exit_code == 5
    body = json.loads(run.stderr)["error"]
    assert body["code"] == "SERVICE_UNAVAILABLE"
    assert body["message"].startswith("Bad database URL (--database-url)")
    assert "hunter22" not in run.stderr


def test_a_sqlite_directory_that_cannot_be_made_is_exit_5(cli_at, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    run = cli_at(f"sqlite:///{blocker}/sub/x.db", "users", "list")
    assert run.exit_code == 5
    assert "Cannot create the directory" in run.error_line


def test_another_bad_setting_is_exit_2(cli_at, tmp_path, monkeypatch):
    monkeypatch.setenv("USERMGMT_BCRYPT_ROUNDS", "99")
    run = cli_at(f"sqlite:///{tmp_path / 'x.db'}", "users", "list")
    assert run.exit_code == 2
    assert run.error_line.startswith("error: VALIDATION_ERROR: USERMGMT_BCRYPT_ROUNDS:")


def test_unexpected_errors_hide_the_traceback_unless_debug(cli, monkeypatch):
    from usermgmt.core.reads.users import UserReads

    def boom(self, *args, **kwargs):
        raise RuntimeError("internal detail with a secret")

    monkeypatch.setattr(UserReads, "list", boom)
    run = cli("users", "list")
    assert run.exit_code == 1
    assert run.stderr == (
        "error: INTERNAL_ERROR: Unexpected error (RuntimeError); "
        "run with --debug to see the traceback\n"
    )
    debug = cli("--debug", "users", "list")
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.error_line.startswith("error: INTERNAL_ERROR")


def test_domain_errors_show_a_traceback_only_with_debug(cli):
    assert "Traceback" not in cli("users", "show", "nobody").stderr
    assert "Traceback" in cli("--debug", "users", "show", "nobody").stderr


def test_writing_to_a_directory_is_a_clear_os_error(cli, tmp_path):
    run = cli("users", "export", "--output-file", str(tmp_path / "missing" / "out.csv"))
    assert run.exit_code == 1
    assert run.error_line.startswith("error: OS_ERROR: No such file or directory")
