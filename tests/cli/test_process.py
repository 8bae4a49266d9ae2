"""`usermgmt` as a real process: exit codes, stdin, pipes, terminals, completion, start-up."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import STRONG_PASSWORD

from usermgmt.core.context import RequestContext

HEAVY_FOR_HELP = ("falcon", "waitress", "textual", "sqlalchemy", "alembic", "pydantic", "rich")
NEVER_OUTSIDE_SERVE_AND_TUI = ("falcon", "waitress", "textual")
# Services a listing does not use: built (and imported) only when a command needs them.
NOT_FOR_A_LISTING = (
    "jwt",
    "smtplib",
    "usermgmt.core.mail.delivery",
    "usermgmt.core.services.auth",
    "usermgmt.core.services.users",  # a listing reads through usermgmt.core.reads
    "usermgmt.core.services.transfer",
    "usermgmt.core.services.maintenance",
    # the other nouns' commands are not even built (usermgmt.cli.lazy)
    "usermgmt.cli.commands.audit",
    "usermgmt.cli.commands.db",
    "usermgmt.cli.commands.mail",
    "usermgmt.cli.commands.tokens",
)


def test_exit_codes_and_stdin_password(run_usermgmt, database_url, services):
    db = ("--database-url", database_url)
    created = run_usermgmt(
        *db,
        "users",
        "create",
        "--email",
        "p@example.com",
        "--password-stdin",
        "-q",
        input=STRONG_PASSWORD + "\n",
    )
    assert created.exit_code == 0, created.stderr
    assert STRONG_PASSWORD not in created.stdout + created.stderr
    ok = services.auth.login(
        RequestContext(), {"email": "p@example.com", "password": STRONG_PASSWORD}
    )
    assert str(ok.user.id) == created.stdout.strip()

    assert run_usermgmt(*db, "users", "show", "nobody").exit_code == 3
    dup = run_usermgmt(*db, "users", "create", "--email", "p@example.com", "--no-password")
    assert (dup.exit_code, dup.stderr) == (4, "error: EMAIL_EXISTS: Email is already registered\n")
    down = run_usermgmt(
        "--database-url", "postgresql+psycopg://u:pw@127.0.0.1:9/x", "users", "list"
    )
    assert down.exit_code == 5 and "Traceback" not in down.stderr
    no_tty = run_usermgmt(*db, "users", "create", "--email", "q@example.com")
    assert no_tty.exit_code == 2


def test_piping_into_head_ends_quietly(seed, database_url):
    seed(2000)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usermgmt",
            "--database-url",
            database_url,
            "users",
            "export",
            "-o",
            "jsonl",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -n 1`
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert first.startswith(b'{"id":')
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception" not in stderr


def test_python_m_and_the_console_script_agree(run_usermgmt):
    version = run_usermgmt("--version")
    assert version.exit_code == 0 and version.stdout.startswith("usermgmt ")
    script = shutil.which("usermgmt", path=os.path.dirname(sys.executable))
    assert script is not None
    same = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert same.stdout == version.stdout


def _imported_modules(args: list[str]) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "usermgmt", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "usermgmt" in names, proc.stderr[-2000:]
    return names


def test_help_starts_without_heavy_imports():
    loaded = _imported_modules(["--help"])
    assert not loaded & set(HEAVY_FOR_HELP), loaded & set(HEAVY_FOR_HELP)


def test_simple_commands_never_import_the_api_or_the_tui(tmp_path, run_usermgmt):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run_usermgmt("--database-url", url, "db", "upgrade").exit_code == 0
    for args in (["users", "show", "nobody"], ["users", "list", "-o", "json"]):
        loaded = _imported_modules(["--database-url", url, *args])
        assert not loaded & set(NEVER_OUTSIDE_SERVE_AND_TUI), (args, loaded)
        assert "alembic" not in loaded  # the schema check needs no Alembic either


def test_a_listing_builds_only_the_services_it_uses(tmp_path, run_usermgmt):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert run_usermgmt("--database-url", url, "db", "upgrade").exit_code == 0
    code = (
        "import sys\n"
        "from usermgmt.cli.app import PROG_NAME, app\n"
        f"args = ['--database-url', {url!r}, 'users', 'list', '-o', 'json']\n"
        "try:\n"
        "    app(args=args, prog_name=PROG_NAME, standalone_mode=False)\n"
        "finally:\n"
        "    print(' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = set(proc.stderr.split())
    assert "usermgmt.core.reads.users" in loaded
    assert not loaded & set(NOT_FOR_A_LISTING), loaded & set(NOT_FOR_A_LISTING)


def test_shell_completion(tmp_path):
    env = {
        **os.environ,
        "_USERMGMT_COMPLETE": "complete_bash",
        "COMP_WORDS": "usermgmt us",
        "COMP_CWORD": "1",
    }
    script = shutil.which("usermgmt", path=os.path.dirname(sys.executable))
    out = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["users"]
    env.update(COMP_WORDS="usermgmt users list --role ", COMP_CWORD="4")
    out = subprocess.run([script], env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["user", "moderator", "admin"]
    # Typer detects the shell it runs under (a trailing "bash" is not read as the
    # shell): run it from bash, as a user's `usermgmt --show-completion` would be
    # (a command list, so that bash stays its parent instead of exec-ing it).
    show = subprocess.run(
        ["bash", "-c", f"{shlex.quote(script)} --show-completion; exit $?"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert show.returncode == 0 and "_USERMGMT_COMPLETE=complete_bash" in show.stdout


# ---- on a terminal (a pseudo-terminal) ----------------------------------------------------


def _on_a_terminal(args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run usermgmt with a pty as its terminal; answer each prompt (text to wait for, reply)."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execv(sys.executable, [sys.executable, "-m", "usermgmt", *args])
    screen = b""
    answered_up_to = 0
    pending = list(answers)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if pending and pending[0][0].encode() in screen[answered_up_to:]:
                _prompt, reply = pending.pop(0)
                answered_up_to = len(screen)
                os.write(fd, reply.encode() + b"\r")
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # still waiting for input nobody will give: stop it
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a pseudo-terminal")
def test_a_terminal_is_asked_for_the_password_twice_without_echo(database_url, services, operator):
    code, screen = _on_a_terminal(
        ["--database-url", database_url, "users", "create", "--email", "tty@example.com", "-q"],
        # Click writes "Password:", then getpass turns echo off and writes " ":
        # answer only after the space, or the reply would be flushed away.
        [("Password: ", STRONG_PASSWORD), ("Repeat the password: ", STRONG_PASSWORD)],
    )
    assert code == 0, screen
    assert STRONG_PASSWORD not in screen  # no echo
    assert services.user_reads.find(operator, "tty@example.com").email == "tty@example.com"
    services.auth.login(RequestContext(), {"email": "tty@example.com", "password": STRONG_PASSWORD})


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a pseudo-terminal")
def test_delete_asks_on_a_terminal(database_url, services, operator, ctx):
    services.users.create(operator, ctx, {"email": "keep@example.com"})
    code, screen = _on_a_terminal(
        ["--database-url", database_url, "users", "delete", "keep@example.com"],
        [("Delete user keep@example.com", "n")],
    )
    assert code == 1 and "Nothing was changed" in screen
    assert services.user_reads.find(operator, "keep@example.com")
    code, screen = _on_a_terminal(
        ["--database-url", database_url, "users", "delete", "keep@example.com"],
        [("Delete user keep@example.com", "y")],
    )
    assert code == 0, screen
    assert "Deleted user keep@example.com" in screen  # a note, because stderr is a terminal


@pytest.mark.skipif(not hasattr(pty, "fork"), reason="needs a pseudo-terminal")
def test_import_shows_a_progress_bar_on_a_terminal(tmp_path):
    rows = "".join(f"bar{i}@example.com\n" for i in range(3000))
    path = tmp_path / "users.csv"
    path.write_text("email\n" + rows)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    code, screen = _on_a_terminal(["--database-url", url, "users", "import", str(path)], [])
    assert code == 0, screen
    assert "Importing" in screen and "3,000 rows: 3,000 created" in screen


def test_the_whole_output_arrives_before_the_process_ends(seed, database_url, tmp_path):
    """main() ends with os._exit after flushing: nothing buffered may be lost, in a pipe
    or in a file, and the exit code still comes through."""
    seed(1500)
    args = [sys.executable, "-m", "usermgmt", "--database-url", database_url]
    piped = subprocess.run(
        [*args, "users", "export", "-o", "jsonl"], capture_output=True, timeout=120
    )
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert len(piped.stdout.splitlines()) >= 1500
    assert piped.stdout.endswith(b"}\n")
    target = tmp_path / "users.csv"
    to_file = subprocess.run(
        [*args, "users", "list", "-o", "csv", "--limit", "100"],
        stdout=target.open("wb"),
        stderr=subprocess.PIPE,
        timeout=120,
    )
    assert to_file.returncode == 0
    assert len(target.read_text().splitlines()) == 101  # header and 100 rows
    missing = subprocess.run([*args, "users", "show", "nobody"], capture_output=True)
    assert missing.returncode == 3 and missing.stderr.startswith(b"error: NOT_FOUND")


def test_a_failing_command_prints_its_error_line_and_nothing_else(run_usermgmt):
    """In a real process no log record reaches stderr beside the error (in-process
    runs hide this: the test runner routes log records itself)."""
    url = "postgresql+psycopg://admin:hunter22@127.0.0.1:9/users"
    as_json = run_usermgmt("--database-url", url, "users", "list", "-o", "json")
    assert as_json.exit_code == 5
    assert as_json.stderr.count("\n") == 1, as_json.stderr
    assert json.loads(as_json.stderr)["error"]["code"] == "SERVICE_UNAVAILABLE"
    plain = run_usermgmt("--database-url", url, "users", "show", "x")
    assert plain.exit_code == 5
    assert plain.stderr.count("\n") == 1, plain.stderr
    assert plain.stderr.startswith("error: SERVICE_UNAVAILABLE: ")
    debug = run_usermgmt("--debug", "--database-url", url, "users", "list")
    assert debug.exit_code == 5
    assert "debug: usermgmt.db: WARNING: database error mapped to" in debug.stderr
    assert "Traceback" in debug.stderr
    assert "hunter22" not in as_json.stderr + plain.stderr + debug.stderr
