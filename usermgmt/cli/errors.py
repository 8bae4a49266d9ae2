"""Exit codes, and the one place where errors are printed.

Every error ends as one line on stderr, ``error: <CODE>: <message>`` (or
``{"error": {...}}`` in the API's error shape when the command runs with
``-o json``/``-o jsonl``), and a fixed exit code from the CLI contract.
Nothing else prints errors: commands raise domain errors, and
:class:`UsermgmtGroup` maps them by class hierarchy through ``EXIT_CODES``.
No traceback is shown unless ``--debug`` is given.

Log records are not errors: :func:`route_logs` keeps them off stderr, where
Python would otherwise print a library's warnings next to the error line (a
script reading ``-o json`` errors would get two lines, one not JSON).
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from usermgmt.core import errors as core_errors
from usermgmt.core.errors import DomainError
from usermgmt.core.text import json_safe, printable

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_AUDIT_BROKEN = 6
EXIT_REFUSED = 7  # remote mode: not logged in, credentials refused, or not permitted
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# Looked up along the exception's class hierarchy, most specific class first.
EXIT_CODES: dict[type[DomainError], int] = {
    core_errors.ValidationError: EXIT_USAGE,
    core_errors.ConfigurationError: EXIT_USAGE,
    core_errors.InvalidToken: EXIT_USAGE,
    core_errors.NotFound: EXIT_NOT_FOUND,
    core_errors.Conflict: EXIT_CONFLICT,
    core_errors.AccountLocked: EXIT_CONFLICT,
    core_errors.ServiceUnavailable: EXIT_UNAVAILABLE,
    core_errors.AuditChainBroken: EXIT_AUDIT_BROKEN,
    core_errors.AuthenticationError: EXIT_REFUSED,
    core_errors.PermissionDenied: EXIT_REFUSED,
    DomainError: EXIT_UNEXPECTED,
}


def exit_code_for(exc: DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return EXIT_UNEXPECTED  # pragma: no cover - DomainError is in the table


class CliError(DomainError):
    """A problem the CLI itself finds (bad usage, an unreadable file, a declined prompt)."""

    def __init__(self, code: str, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code


def usage_error(message: str) -> CliError:
    return CliError("USAGE_ERROR", message, EXIT_USAGE)


class Interrupted(Exception):
    """Ctrl-C: the running transaction was rolled back."""


def emit_error(code: str, message: str, body: dict[str, Any] | None = None) -> None:
    """Print one error line on stderr, in the format the command's -o asks for."""
    from usermgmt.cli.state import current

    output = current().output
    message = " ".join(message.split())  # one line, whatever the message held
    if output in ("json", "jsonl"):
        error = {"code": code, "message": message, **(body or {})}
        line = json_safe(json.dumps({"error": error}, ensure_ascii=False))
    else:  # a message may quote what was typed or stored: shown, never obeyed
        line = printable(f"error: {code}: {message}")
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def report_domain_error(exc: DomainError) -> int:
    from usermgmt.cli.state import current

    if isinstance(exc, CliError):
        emit_error(exc.code, exc.message)
        return exc.exit_code
    body = exc.to_dict()
    message = exc.message
    if isinstance(exc, core_errors.ServiceUnavailable):
        unreachable = isinstance(exc, core_errors.DatabaseUnavailable)
        message = current().explain_unavailable(message, unreachable=unreachable)
    body.pop("code", None)
    body.pop("message", None)
    emit_error(exc.code, message, body)
    return exit_code_for(exc)


def route_logs(debug: bool) -> None:
    """Where this process's log records go, unless something routes them already.

    By default nowhere: a failure is reported by its one error line (the core
    logs, say, "database error mapped to SERVICE_UNAVAILABLE" as it raises).
    With ``--debug``, warnings and worse go to stderr as ``debug: …`` lines.
    ``serve`` and ``tui`` set up their own logging and replace this.
    """
    import logging  # not at module level: `usermgmt --help` never needs it

    root = logging.getLogger()
    if root.handlers:  # a test runner or an embedding program already routes them
        return
    if debug:
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(name)s: %(levelname)s: %(message)s"))
    else:
        handler = logging.NullHandler()
    root.addHandler(handler)


def _debug() -> bool:
    from usermgmt.cli.state import current

    return current().debug


def _is_help_instead(exc: typer.TyperException) -> bool:
    """A group run without a command (``no_args_is_help``): its message is the group's help."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message()
    return ctx is not None and message.startswith("Usage:") and message == ctx.get_help()


class UsermgmtGroup(TyperGroup):
    """The root group: runs a command and turns whatever it raises into an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        from usermgmt.cli import state
        from usermgmt.cli.argv import normalise

        args = normalise(sys.argv[1:] if args is None else args)
        _cli_state, token = state.begin()
        try:
            code = self._run(args, prog_name, complete_var, extra)
        finally:
            with contextlib.suppress(DomainError):  # closing a pool that lost its server
                state.end(token)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args: Any, prog_name: str | None, complete_var: str | None, extra) -> int:
        try:
            rv = super().main(
                args=args,
                prog_name=prog_name,
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
            return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK
        except typer.TyperException as exc:  # Typer's usage errors (its Click's exceptions)
            if _is_help_instead(exc):
                exc.show()
                return exc.exit_code
            if _debug():
                traceback.print_exc()
            message = exc.format_message()
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                message += f" (see '{ctx.command_path} --help')"
            emit_error("USAGE_ERROR", message)
            return exc.exit_code
        except typer.Abort:
            emit_error("ABORTED", "Aborted")
            return EXIT_UNEXPECTED
        except Interrupted:
            emit_error("INTERRUPTED", "Interrupted; the running change was rolled back")
            return EXIT_INTERRUPTED
        except DomainError as exc:
            if _debug():
                traceback.print_exc()
            return report_domain_error(exc)
        except OSError as exc:
            # A file that cannot be read or written, a full disk: say which.
            if _debug():
                traceback.print_exc()
            where = f": {exc.filename}" if exc.filename else ""
            emit_error("OS_ERROR", f"{exc.strerror or exc}{where}")
            return EXIT_UNEXPECTED
        except Exception as exc:  # noqa: BLE001 - the last resort, after every typed error
            if _debug():
                traceback.print_exc()
            emit_error(
                "INTERNAL_ERROR",
                f"Unexpected error ({type(exc).__name__}); run with --debug to see the traceback",
            )
            return EXIT_UNEXPECTED

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted() from None
