"""The `usermgmt` command: global options, top-level commands and the noun sub-apps.

To add a noun, write ``usermgmt/cli/commands/<noun>.py`` with an ``app`` and
add it to ``SUB_APPS`` below (see ``usermgmt/cli/__init__.py``).
"""

from __future__ import annotations

import importlib
import sys
from typing import Annotated, Any

import typer

from usermgmt import __version__
from usermgmt.cli import state
from usermgmt.cli.errors import route_logs
from usermgmt.cli.lazy import LazyGroup
from usermgmt.cli.output import Output, OutputOption, render_one

PROG_NAME = "usermgmt"

# The nouns and the modules holding their sub-apps, in the order `usermgmt --help`
# lists them. A noun's module is imported and its commands built only when the noun
# is used (see ``lazy``).
SUB_APPS: list[tuple[str, str]] = [
    ("users", "usermgmt.cli.commands.users"),
    ("roles", "usermgmt.cli.commands.roles"),
    ("sessions", "usermgmt.cli.commands.sessions"),
    ("audit", "usermgmt.cli.commands.audit"),
    ("tokens", "usermgmt.cli.commands.tokens"),
    ("keys", "usermgmt.cli.commands.keys"),
    ("mfa", "usermgmt.cli.commands.mfa"),
    ("mail", "usermgmt.cli.commands.mail"),
    ("webhooks", "usermgmt.cli.commands.webhooks"),
    ("db", "usermgmt.cli.commands.db"),
    ("context", "usermgmt.cli.commands.context"),
]


def sub_app(name: str) -> typer.Typer:
    """The Typer app of the noun ``name``."""
    return importlib.import_module(dict(SUB_APPS)[name]).app


def _noun_group(name: str) -> Any:
    """The Click group of a noun, built as ``app.add_typer(sub_app(name), name=name)`` would."""
    from typer.main import get_group_from_info
    from typer.models import TyperInfo

    return get_group_from_info(
        TyperInfo(sub_app(name), name=name),
        pretty_exceptions_short=app.pretty_exceptions_short,
        rich_markup_mode=app.rich_markup_mode,
        suggest_commands=app.suggest_commands,
    )


class RootGroup(LazyGroup):
    loaders = {name: (lambda name=name: _noun_group(name)) for name, _ in SUB_APPS}


app = typer.Typer(
    name=PROG_NAME,
    cls=RootGroup,
    epilog="Exit codes: 0 ok, 1 unexpected, 2 usage or bad input, 3 not found, "
    "4 conflict, 5 database or server unavailable, or schema behind, 6 audit chain broken, "
    "7 not logged in, refused or not permitted (remote mode).",
    no_args_is_help=True,
    rich_markup_mode=None,  # plain Click help: starts fast, reads the same in docs
    pretty_exceptions_show_locals=False,  # a traceback must never show a password
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"{PROG_NAME} {__version__}\n")
        raise typer.Exit()


@app.callback()
def root(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="sqlite:///path or postgresql+psycopg://user:pass@host/db. "
            "Default: $USERMGMT_DATABASE_URL, else an SQLite file in the data directory.",
            show_default=False,
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(
            "--context",
            metavar="NAME",
            help="Work through the server of this context (usermgmt login). "
            "Default: $USERMGMT_CONTEXT, else the current context, if any.",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an error.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Manage users: accounts, roles, sessions, the audit log and the database.

    Every change is audited as cli:<your OS user>. Records print as a table,
    or with -o json|jsonl|csv for scripts; -q prints only ids.

    \b
    Examples:
      usermgmt users create --email ann@example.com --role admin
      usermgmt users list --status locked -o json
      usermgmt --database-url postgresql+psycopg://app@db/users db upgrade
    """
    current = state.current()
    current.database_url = database_url
    current.context = context
    current.debug = debug
    route_logs(debug)


# ---- info, serve, tui ----------------------------------------------------------


@app.command("info")
def info(output: OutputOption = Output.table) -> None:
    """Show the version, the database (password masked), its schema and the settings.

    Each setting is shown with where it came from (command line, environment
    or default); secrets are hidden. Exit 5 if the database cannot be reached.

    \b
    Examples:
      usermgmt info
      usermgmt info -o json | jq .database
    """
    from dataclasses import asdict

    current = state.current()
    if current.remote_target() is not None:
        from usermgmt.cli.remote import remote_info

        remote_info(current.backend(), output)
        return
    described = current.services(check_schema=False).runtime.describe(
        command_line=current.overrides
    )
    database: dict[str, Any] = {"url": described.database, "backend": described.backend}
    schema = described.schema
    if schema is not None:
        database.update(
            {
                "schema": schema.current,
                "head": schema.head,
                "up_to_date": schema.up_to_date,
                "reachable": True,
            }
        )
    else:
        database.update({"schema": None, "head": described.head, "reachable": False})
    record = {
        "version": described.version,
        "python": described.python,
        "database": database,
        "settings": [asdict(setting) for setting in described.settings],
    }
    render_one(record, output=output, human=_info_text)
    if described.unavailable is not None:
        raise described.unavailable


def _info_text(record: dict[str, Any]) -> str:
    from io import StringIO

    from usermgmt.cli.output import Column, render

    db_ = record["database"]
    if not db_["reachable"]:
        schema = "unknown (database unreachable)"
    elif db_["up_to_date"]:
        schema = f"{db_['schema']} (head)"
    else:
        schema = (
            f"{db_['schema'] or 'empty'}; the code needs {db_['head']}: run `usermgmt db upgrade`"
        )
    buf = StringIO()
    buf.write(f"usermgmt {record['version']} (Python {record['python']})\n")
    buf.write(f"database: {db_['url']}\n")
    buf.write(f"schema:   {schema}\n\n")
    render(
        record["settings"],
        output=Output.table,
        columns=[
            Column("SETTING", "name", no_wrap=True),
            Column("VALUE", "value"),
            Column("SOURCE", "source"),
        ],
        stream=buf,
    )
    return buf.getvalue().rstrip("\n")


@app.command("serve")
def serve(
    host: Annotated[
        str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            "--port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Port to listen on; 0 picks a free one (the start-up line shows it).",
        ),
    ] = 8000,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            max=256,
            metavar="N",
            help="Threads per process [default: one per core, at least 2, at most 8].",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            metavar="N",
            help="Server processes sharing the port (POSIX); more than one needs "
            "USERMGMT_RATE_LIMIT_STORAGE=database or redis://… while rate limits are on.",
        ),
    ] = 1,
) -> None:
    """Serve the REST API with waitress until SIGTERM or Ctrl-C.

    \b
    Examples:
      usermgmt serve
      usermgmt serve --host 0.0.0.0 --port 8080 --threads 16
      usermgmt serve --port 0
      USERMGMT_RATE_LIMIT_STORAGE=database usermgmt serve --workers 2 --threads 2
    """
    state.current().refuse_remote("`usermgmt serve`")
    from usermgmt.api.server import serve as run_server

    code = run_server(
        state.current().settings(), host=host, port=port, threads=threads, workers=workers
    )
    raise typer.Exit(code or 0)


@app.command("tui")
def tui() -> None:
    """Open the terminal console.

    \b
    Example:
      usermgmt tui
    """
    current = state.current()
    if current.remote_target() is not None:
        backend = current.backend()
        first = _remote_console_opening(backend)  # refused without a terminal: exit 7
        if first is not None:  # sign in or enrol first: no page to fetch ahead yet
            from usermgmt.tui.app import run_tui_remote
            from usermgmt.tui.screens.mfa_login import opening

            raise typer.Exit(run_tui_remote(backend, opening=opening(first)) or 0)
        from usermgmt.tui.remote_start import RemoteHeadStart

        # The first page is asked for while Textual is being imported, as embedded.
        remote_start = RemoteHeadStart(backend)
        try:
            from usermgmt.tui.app import run_tui_remote

            code = run_tui_remote(backend, first_page=remote_start.first_page)
        finally:
            remote_start.close()
        raise typer.Exit(code or 0)
    from usermgmt.tui.start import HeadStart

    settings = state.current().settings()
    # Connect and fetch the first page in threads while Textual is being imported.
    head_start = HeadStart(settings)

    from usermgmt.tui.app import run_tui

    code = run_tui(settings, head_start=head_start)
    raise typer.Exit(code or 0)


def _remote_console_opening(backend) -> str | None:
    """What the remote console must open with: None (the home screen), "enrol" (the
    server's policy holds the session back) or "sign_in" (the context's session is
    refused, and there is a terminal to ask on; else one error line, exit 7)."""
    from usermgmt.core.errors import NotLoggedIn

    if backend.context_name is None:  # USERMGMT_TOKEN: nothing to sign in with
        backend.me()
        return None
    try:
        return "enrol" if backend.enrolment_required() else None
    except NotLoggedIn:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise
        return "sign_in"


# ---- remote mode: login, logout ---------------------------------------------


@app.command("login")
def login(
    server: Annotated[
        str,
        typer.Option(
            "--server",
            metavar="URL",
            help="The served API's root URL, e.g. https://users.example.com",
        ),
    ],
    context_name: Annotated[
        str | None,
        typer.Option(
            "--context",
            metavar="NAME",
            help="Name of the context to store. Default: the server's host name.",
            show_default=False,
        ),
    ] = None,
    email: Annotated[str | None, typer.Option("--email", metavar="EMAIL")] = None,
    username: Annotated[str | None, typer.Option("--username", metavar="NAME")] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin",
            help="Read the password from the first line of stdin (and an account's "
            "second-factor code from the second).",
        ),
    ] = False,
    ca_bundle: Annotated[
        str | None,
        typer.Option(
            "--ca-bundle",
            metavar="FILE",
            help="Trust the server certificates this PEM file signs (kept in the context).",
            show_default=False,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure", help="Do not verify the server's TLS certificate (warns on every call)."
        ),
    ] = False,
    allow_http: Annotated[
        bool,
        typer.Option(
            "--allow-http", help="Allow plain http:// to a server that is not on this machine."
        ),
    ] = False,
) -> None:
    """Log in to a server as a person; later commands act as you, through it.

    Asks for your email and password (no echo) on a terminal, or reads the
    password with --password-stdin. An account with a second factor is asked
    for its code (or a recovery code), which --password-stdin reads from the
    second line of stdin. Stores the server and the session (never
    the password) in a context of the contexts file (mode 600) and makes it
    the current one.

    \b
    Examples:
      usermgmt login --server https://users.example.com
      usermgmt login --server https://users.example.com --context prod --email ann@example.com
      usermgmt login --server https://u.example.com --email ci@example.com \\
        --password-stdin < pw.txt
    """
    from usermgmt.cli.remote import login as run_login

    run_login(
        server=server,
        context_name=context_name or state.current().context,
        email=email,
        username=username,
        password_stdin=password_stdin,
        ca_bundle=ca_bundle,
        insecure=insecure,
        allow_http=allow_http,
    )


@app.command("logout")
def logout(
    context_name: Annotated[
        str | None,
        typer.Option(
            "--context", metavar="NAME", help="Default: the current context.", show_default=False
        ),
    ] = None,
) -> None:
    """End the session on the server and forget its tokens (the context stays).

    \b
    Example:
      usermgmt logout --context prod
    """
    from usermgmt.cli.remote import logout as run_logout

    run_logout(context_name or state.current().context)


def main() -> None:
    """The console script and `python -m usermgmt`.

    When the command is done (its services closed, so database connections are
    shut cleanly), the output is flushed and the process ends with
    ``os._exit``: the interpreter's own teardown collects every module of
    SQLAlchemy and pydantic, a noticeable share of a short command, and does
    nothing a finished command needs. Nothing of ours relies on atexit.
    The garbage collector is paused while the command starts (see
    ``collector``).
    """
    from usermgmt.cli import collector

    collector.pause()
    try:
        app(prog_name=PROG_NAME)
        code: int | str | None = 0
    except SystemExit as exc:
        code = exc.code
    _exit_now(code)


def _exit_now(code: int | str | None) -> None:
    import contextlib
    import logging
    import os

    if isinstance(code, str):  # sys.exit("message"): print it, exit 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe (usermgmt … | head): nothing left to save.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)
