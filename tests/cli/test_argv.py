"""Global options before or after the command words (usermgmt/cli/argv.py), through the CLI."""

from __future__ import annotations

import pytest

from cli.conftest import _invoke
from usermgmt.cli.argv import normalise


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["users", "list", "--database-url", "U"], ["--database-url", "U", "users", "list"]),
        (["users", "list", "--database-url=U"], ["--database-url=U", "users", "list"]),
        (["users", "show", "x", "--debug"], ["--debug", "users", "show", "x"]),
        (["--context", "c", "users", "list"], ["--context", "c", "users", "list"]),
        (["users", "list", "--context", "c"], ["--context", "c", "users", "list"]),
        (["-o", "json", "users", "show", "x"], ["users", "show", "x", "-o", "json"]),
        (["--output=csv", "users", "list"], ["users", "list", "--output=csv"]),
        (["-ojson", "--debug", "roles", "list"], ["--debug", "roles", "list", "-ojson"]),
        # login and logout keep their own --context
        (["login", "--context", "p"], ["login", "--context", "p"]),
        (["logout", "--context", "p", "--debug"], ["--debug", "logout", "--context", "p"]),
        # after --, nothing is an option
        (["users", "import", "--", "--debug"], ["users", "import", "--", "--debug"]),
        (["-o", "json", "users", "x", "--", "-f"], ["users", "x", "-o", "json", "--", "-f"]),
        # a missing value is left for Click to report
        (["users", "list", "--context"], ["users", "list", "--context"]),
        ([], []),
    ],
)
def test_normalise_moves_global_options_where_click_reads_them(given, parsed):
    assert normalise(given) == parsed


def test_database_url_and_output_after_the_command_words(database_url):
    before = _invoke("--database-url", database_url, "-o", "json", "roles", "list")
    after = _invoke("roles", "list", "--database-url", database_url, "-o", "json")
    assert before.exit_code == after.exit_code == 0, after.stderr
    assert before.stdout == after.stdout and before.json()


def test_output_before_the_command_words_shapes_errors_too(database_url):
    result = _invoke("-o", "json", "users", "show", "nobody@example.com", "--database-url",
                     database_url)  # fmt: skip
    assert result.exit_code == 3
    assert result.error_line.startswith('{"error": {"code": "NOT_FOUND"')


def test_debug_after_the_command_words_is_the_root_flag(tmp_path):
    result = _invoke("info", "--debug", "--database-url", "postgresql+psycopg://u@127.0.0.1:1/x")
    assert result.exit_code == 5
    assert "No such option" not in result.stderr
