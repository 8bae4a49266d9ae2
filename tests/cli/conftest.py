"""CLI fixtures: run `usermgmt` in-process (CliRunner) or as a real process, on both databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from typer.testing import CliRunner

from usermgmt.cli.app import PROG_NAME, app


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)

    def jsonl(self):
        return [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def error_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def _invoke(*args: str, input: str | bytes | None = None) -> Run:
    result = CliRunner().invoke(app, list(args), input=input, prog_name=PROG_NAME)
    # Every error is mapped to an exit code; nothing escapes the CLI.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli(database_url):
    """``cli("users", "list", input=...)`` runs the CLI in-process against the test database."""

    def invoke(*args: str, input: str | bytes | None = None, url: str | None = None) -> Run:
        return _invoke("--database-url", url or database_url, *args, input=input)

    return invoke


@pytest.fixture
def cli_at():
    """``cli_at(url, "users", "list")``: the CLI against any URL (tests that need no fixture DB)."""

    def invoke(url: str, *args: str, input: str | bytes | None = None) -> Run:
        return _invoke("--database-url", url, *args, input=input)

    return invoke


@pytest.fixture
def run_usermgmt():
    """``run_usermgmt(*args, input=...)`` runs `python -m usermgmt` as a separate process."""

    def run(*args: str, input: str | bytes | None = None, env: dict | None = None) -> Run:
        text = not isinstance(input, bytes)
        proc = subprocess.run(
            [sys.executable, "-m", "usermgmt", *args],
            input=input,
            capture_output=True,
            text=text,
            env={**os.environ, **(env or {})},
            timeout=120,
        )
        out, err = proc.stdout, proc.stderr
        if not text:
            out, err = out.decode(), err.decode()
        return Run(proc.returncode, out, err)

    return run


@pytest.fixture
def seed(services, operator, ctx):
    """``seed(n)`` imports n plain users (user0@example.com …) straight through the core."""

    def make(n: int, **extra) -> None:
        rows = (
            (i + 1, {"email": f"user{i}@example.com", "username": f"user{i:04d}", **extra})
            for i in range(n)
        )
        report = services.transfer.import_users(operator, ctx, rows)
        assert report.committed and not report.errors, report.errors

    return make
