"""Passwords and confirmations. A password never comes from argv.

``--password-stdin`` reads exactly one line from stdin (the line ending is
removed, nothing else). Without it, a terminal is asked twice without echo;
when stdin is not a terminal there is nobody to ask, so it is a usage error
naming the flags that work.
"""

from __future__ import annotations

import sys

import typer

from usermgmt.cli.errors import EXIT_UNEXPECTED, CliError, usage_error
from usermgmt.core.text import printable


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def password_from_stdin() -> str:
    line = sys.stdin.readline()
    if not line:
        raise usage_error("--password-stdin: nothing on stdin (expected one line: the password)")
    password = line[:-1] if line.endswith("\n") else line
    password = password[:-1] if password.endswith("\r") else password
    if not password:
        raise usage_error("--password-stdin: the line read from stdin is empty")
    return password


def read_password(*, from_stdin: bool, alternatives: str = "--password-stdin") -> str:
    """The password from stdin, or from a no-echo prompt asked twice on a terminal."""
    if from_stdin:
        return password_from_stdin()
    if not stdin_is_terminal():
        raise usage_error(
            f"stdin is not a terminal, so there is nobody to ask for a password: use {alternatives}"
        )
    return typer.prompt(
        "Password", hide_input=True, confirmation_prompt="Repeat the password", err=True
    )


def confirm(question: str, *, yes: bool) -> None:
    """Ask on a terminal unless ``--yes``; without a terminal there is nobody to ask.

    A "no" is exit 1 with nothing changed.
    """
    if yes or not stdin_is_terminal():
        return
    if not typer.confirm(printable(question), default=False, err=True):
        raise CliError("ABORTED", "Nothing was changed", EXIT_UNEXPECTED)
