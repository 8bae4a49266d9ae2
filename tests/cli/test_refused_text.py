"""Names the core refuses (control characters, bidirectional overrides) are a usage
error (exit 2) that never echoes the text to the terminal."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("name", ["Ada\u202egnp.exe", "Ada\x1b[31m", "Ada\x9b"])
def test_create_refuses_a_name_with_control_characters(cli, services, operator, name):
    run = cli(
        "users", "create", "--email", "ada@example.com", "--first-name", name, "--no-password"
    )
    assert run.exit_code == 2
    assert run.error_line == (
        "error: VALIDATION_ERROR: Invalid input (first_name: Must not contain control "
        "characters or bidirectional overrides)"
    )
    assert name not in run.stderr
    assert services.user_reads.list(operator).meta.total == 0
