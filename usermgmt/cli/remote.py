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
from usermgmt.core.errors import DomainError, NotLoggedIn
from usermgmt.core.text import printable


def say(message: str) -> None:
    """A status line for a person, on stderr (stdout stays for records)."""
    sys.stderr.write(printable(message) + "\n")


def _verify(ca_bundle: str | None, insecure: bool) -> bool | str:
    return False if insecure else (ca_bundle or True)


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
    from usermgmt.client.contexts import Context, ContextStore, check_name
    from usermgmt.client.errors import error_from
    from usermgmt.client.session import API, Connection, normalise_server, warn_insecure

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
    conn = Connection(url, None, verify=_verify(ca_bundle, insecure))
    try:
        key = "username" if username else "email"
        response = conn.send_raw(
            "POST", f"{API}/auth/login", json={key: identifier, "password": password}
        )
        body = response.json() if response.content else None
        if response.status_code != 200:
            raise error_from(response.status_code, body, url)
        if isinstance(body, dict) and body.get("mfa_required"):
            body = _second_factor(conn, body, from_stdin=password_stdin)
    finally:
        conn.close()
    user, tokens = body["user"], body["tokens"]
    context = Context(
        server=url,
        user={k: user.get(k) for k in ("id", "email", "username")},
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
        ca_bundle=ca_bundle,
        insecure=insecure,
        allow_http=allow_http,
    )
    store = ContextStore()
    _end_previous_session(store, name)
    store.save(name, context)
    say(f"Logged in to {url} as {user.get('email')} (context {name}, now current).")
    if body.get("mfa_enrolment_required"):
        say(
            "This account must set up a second factor (the server's policy): until it does, "
            "the server refuses this session everything but the enrolment."
        )


def _end_previous_session(store: Any, name: str) -> None:
    """Logging in again to a context ends the session it held, if its server answers."""
    if name not in store.read()["contexts"]:
        return
    _, previous = store.get(name)
    if previous.access_token or previous.refresh_token:
        with contextlib.suppress(DomainError):
            revoke_session(store, name)


def _second_factor(conn: Any, challenge: dict[str, Any], *, from_stdin: bool) -> dict[str, Any]:
    """Answer the server's second-factor challenge: with --password-stdin the code is the
    second line of stdin, else a terminal is asked. Six digits are an authenticator code,
    anything else a recovery code."""
    from usermgmt.client.errors import error_from
    from usermgmt.client.session import API

    code = _code_from_stdin() if from_stdin else None
    if code is None:
        if not stdin_is_terminal():
            raise usage_error(
                "this account has a second factor: give its code as the second line of "
                "--password-stdin, or log in on a terminal"
            )
        code = typer.prompt("Authentication code (or a recovery code)", err=True)
    code = code.strip()
    digits = "".join(code.split())
    field = "code" if len(digits) == 6 and digits.isdigit() else "recovery_code"
    response = conn.send_raw(
        "POST",
        f"{API}/auth/mfa/verify",
        json={"mfa_token": challenge["mfa_token"], field: code},
    )
    body = response.json() if response.content else None
    if response.status_code != 200:
        raise error_from(response.status_code, body, conn.server)
    return body


def _code_from_stdin() -> str | None:
    """The line after the password on stdin, or None when there is none."""
    line = sys.stdin.readline().strip()
    return line or None


def logout(context_name: str | None) -> None:
    from usermgmt.client.contexts import ContextStore, check_name

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


def revoke_session(store: Any, name: str) -> bool:
    """End the context's session on its server; False if the server no longer knew it.

    A server that cannot be reached raises (exit 5): the tokens are then kept,
    since the session is still live there.
    """
    from usermgmt.client.factory import RemoteTarget, connect
    from usermgmt.client.session import API

    _, context = store.get(name)
    backend = connect(RemoteTarget(context.server, name))
    try:
        refresh = backend.conn.credentials.context.refresh_token
        backend.conn.json(
            "POST",
            f"{API}/auth/logout",
            json={"refresh_token": refresh} if refresh else {},
        )
        return True
    except NotLoggedIn:
        return False
    finally:
        backend.close()


def remove_context(name: str) -> None:
    from usermgmt.client.contexts import ContextStore, check_name

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
