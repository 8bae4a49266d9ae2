"""Remote mode's own commands: login, logout, and what `usermgmt info` shows remotely."""

from __future__ import annotations

import contextlib
import sys
from typing import Any
from urllib.parse import urlsplit

import typer

from usermgmt.cli.errors import usage_error
from usermgmt.cli.output import Output, render_one
from usermgmt.cli.prompts import password_from_stdin, stdin_is_terminal
from usermgmt.core.errors import DomainError
from usermgmt.core.text import printable


def say(message: str) -> None:
    """A status line for a person, on stderr (stdout stays for records)."""
    sys.stderr.write(printable(message) + "\n")


def login(
    *,
    server: str,
    context_name: str | None,
    email: str | None,
    username: str | None,
    password_stdin: bool,
    ca_bundle: str | None,
    insecure: bool,
    allow_http: bool,
) -> None:
    from usermgmt.client.contexts import ContextStore, check_name
    from usermgmt.client.login import LoginAttempt, SecondFactorAsked, save_login
    from usermgmt.client.session import normalise_server, warn_insecure

    if email and username:
        raise usage_error("--email and --username cannot be used together")
    url = normalise_server(server, allow_http=allow_http)
    name = check_name(context_name or urlsplit(url).netloc)
    if ca_bundle is not None:
        from pathlib import Path

        if not Path(ca_bundle).is_file():
            raise usage_error(f"--ca-bundle: no such file: {ca_bundle}")
        ca_bundle = str(Path(ca_bundle).resolve())
    identifier = email or username
    if identifier is None:
        if not stdin_is_terminal():
            raise usage_error("stdin is not a terminal, so there is nobody to ask: give --email")
        identifier = typer.prompt("Email or username", err=True).strip()
    if password_stdin:
        password = password_from_stdin()
    elif stdin_is_terminal():
        password = typer.prompt("Password", hide_input=True, err=True)
    else:
        raise usage_error(
            "stdin is not a terminal, so there is nobody to ask for a password: "
            "use --password-stdin"
        )
    if insecure and url.startswith("https://"):
        warn_insecure(url)
    with LoginAttempt(url, ca_bundle=ca_bundle, insecure=insecure) as attempt:
        answer = attempt.password(identifier, password, by="username" if username else "email")
        if isinstance(answer, SecondFactorAsked):
            answer = attempt.second_factor(answer, _ask_code(from_stdin=password_stdin))
    save_login(
        ContextStore(),
        name,
        answer,
        server=url,
        ca_bundle=ca_bundle,
        insecure=insecure,
        allow_http=allow_http,
    )
    say(f"Logged in to {url} as {answer.user.get('email')} (context {name}, now current).")
    if answer.mfa_enrolment_required:
        say(
            "This account must set up a second factor (the server's policy): until it does, "
            "the server refuses this session everything but the enrolment."
        )


def _ask_code(*, from_stdin: bool) -> str:
    """The second factor's code: with --password-stdin the second line of stdin, else a
    terminal is asked."""
    code = _code_from_stdin() if from_stdin else None
    if code is None:
        if not stdin_is_terminal():
            raise usage_error(
                "this account has a second factor: give its code as the second line of "
                "--password-stdin, or log in on a terminal"
            )
        code = typer.prompt("Authentication code (or a recovery code)", err=True)
    return code


def _code_from_stdin() -> str | None:
    """The line after the password on stdin, or None when there is none."""
    line = sys.stdin.readline().strip()
    return line or None


def logout(context_name: str | None) -> None:
    from usermgmt.client.contexts import ContextStore, check_name
    from usermgmt.client.login import revoke_session

    store = ContextStore()
    name, context = store.get(check_name(context_name) if context_name else None)
    if not (context.access_token or context.refresh_token):
        say(f"Context {name} is not logged in.")
        return
    revoked = revoke_session(store, name)
    with store.locked() as data:
        raw = data["contexts"].get(name)
        if raw is not None:
            raw["access_token"] = raw["refresh_token"] = None
    how = "the session was ended on the server" if revoked else "the session had already ended"
    say(f"Logged out of {context.server} (context {name}): {how}.")


def remove_context(name: str) -> None:
    from usermgmt.client.contexts import ContextStore, check_name
    from usermgmt.client.login import revoke_session

    store = ContextStore()
    name, context = store.get(check_name(name))
    ended = ""
    if context.access_token or context.refresh_token:
        with contextlib.suppress(DomainError):  # unreachable: it expires on its own
            if revoke_session(store, name):
                ended = "; its session was ended on the server"
    with store.locked() as data:
        data["contexts"].pop(name, None)
        if data.get("current") == name:
            data["current"] = None
    say(f"Removed context {name}{ended}.")


def remote_info(backend: Any, output: Output) -> None:
    from usermgmt import __version__

    info = backend.info()
    me = info.get("me") or {}
    record = {
        "mode": "remote",
        "version": __version__,
        "context": backend.context_name,
        "server": {
            "url": backend.server,
            "version": info.get("version"),
            "database": info.get("database"),
            "schema": info.get("schema_revision"),
        },
        "user": {
            "id": me.get("id"),
            "email": me.get("email"),
            "username": me.get("username"),
            "roles": me.get("roles", []),
        },
    }
    render_one(record, output=output, id_key="context", human=_info_text)


def _info_text(record: dict[str, Any]) -> str:
    server, user = record["server"], record["user"]
    context = f" (context {record['context']})" if record["context"] else ""
    roles = ", ".join(user["roles"]) or "no roles"
    who = user["email"] or user["username"] or user["id"]
    return "\n".join(
        [
            f"usermgmt {record['version']}, remote mode",
            f"server:   {server['url']}{context}",
            f"          usermgmt {server['version']}, {server['database']} database",
            f"schema:   {server['schema']}",
            f"you:      {who} ({roles})",
        ]
    )
