"""Several users at once (usermgmt/cli/bulk.py): reading ids from stdin, and its usage errors.

The behaviour against a database, embedded and remote, is in tests/client/test_ops_cli.py.
"""

from __future__ import annotations


def test_ids_from_stdin_and_arguments_together(cli, seed):
    seed(3)
    result = cli("users", "lock", "user0000", "-", "-q", input="user0001\n\n  user0002  \n")
    assert result.exit_code == 0, result.stderr
    emails = [
        cli("users", "show", uid, "-o", "json").json()["email"] for uid in result.stdout.split()
    ]
    assert emails == ["user0@example.com", "user1@example.com", "user2@example.com"]


def test_stdin_given_twice_or_empty_is_a_usage_error(cli):
    twice = cli("users", "unlock", "-", "-", input="x\n")
    assert twice.exit_code == 2 and "may be given once" in twice.error_line
    empty = cli("users", "unlock", "-", input="\n\n")
    assert empty.exit_code == 2 and "no user ids given" in empty.error_line


def test_all_failing_prints_an_empty_list_and_the_first_failure_code(cli):
    result = cli("users", "restore", "nobody1", "nobody2", "-o", "json")
    assert result.exit_code == 3
    assert result.json() == []
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith('{"error": ') for line in lines)
    assert '"SOME_FAILED"' in lines[-1] and "restored 0 of 2 users" in lines[-1]
