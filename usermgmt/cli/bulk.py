"""Several users at once: ``usermgmt users lock ID…`` or ``… | usermgmt users unlock -``.

A command that acts on a user takes one or more references (UUID, short id,
email or username); ``-`` reads more from stdin, one per line (blank lines are
skipped). All are handled in one process, one after the other:

- a failure about one user (not found, a conflict, not permitted, bad input)
  prints its error line, naming the reference, and the next one is tried;
- anything else (the database or server unavailable, the login refused, an
  unexpected error) stops the run, as it would stop a single command;
- at the end, one summary line: a note on a terminal when all went well, else
  ``error: SOME_FAILED: …`` with the exit code of the first failure.

With one reference (and no ``-``) a command prints and fails exactly as it
always did; with more, records print as a list (a JSON array, a table).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import typer

from usermgmt.cli.errors import CliError, emit_error, exit_code_for, usage_error
from usermgmt.cli.output import notice
from usermgmt.core import errors as core_errors

T = TypeVar("T")

# Errors about one user: reported, and the run goes on with the next one.
PER_USER: tuple[type[core_errors.DomainError], ...] = (
    core_errors.NotFound,
    core_errors.Conflict,
    core_errors.AccountLocked,
    core_errors.ValidationError,
    core_errors.PermissionDenied,
)

USERS_HELP = "UUIDs, short ids, emails or usernames; - reads more from stdin, one per line."
UsersArg = Annotated[
    list[str],
    typer.Argument(metavar="ID...", help=USERS_HELP, show_default=False),
]


def read_refs(given: Sequence[str]) -> list[str]:
    """``given`` with ``-`` replaced by the lines of stdin."""
    if list(given).count("-") > 1:
        raise usage_error("- (read ids from stdin) may be given once")
    refs: list[str] = []
    for ref in given:
        if ref == "-":
            refs.extend(line.strip() for line in sys.stdin if line.strip())
        else:
            refs.append(ref)
    if not refs:
        raise usage_error("no user ids given (stdin held none)")
    return refs


def is_several(given: Sequence[str]) -> bool:
    return len(given) > 1 or "-" in given


@dataclass
class Tally:
    """What a run over several users did."""

    total: int
    noun: str = "users"
    done: int = 0
    missing: int = 0
    failed: int = 0
    first_exit: int = 0

    def summarise(self, did: str) -> None:
        """The one summary line; raises ``SOME_FAILED`` (the first failure's exit) if any did."""
        skipped = f", {self.missing} not found (ignored)" if self.missing else ""
        if not self.failed:
            notice(f"{did.capitalize()} {self.done} of {self.total} {self.noun}{skipped}.")
            return
        raise CliError(
            "SOME_FAILED",
            f"{did} {self.done} of {self.total} {self.noun}{skipped}; {self.failed} failed "
            "(each named above)",
            self.first_exit,
        )


def each(
    refs: Sequence[str],
    act: Callable[[str], T],
    tally: Tally,
    *,
    ignore_missing: bool = False,
) -> Iterator[T]:
    """``act(ref)`` for every ref, yielding what succeeded and counting the rest in ``tally``."""
    for ref in refs:
        try:
            result = act(ref)
        except core_errors.NotFound:
            if not ignore_missing:
                _failed(ref, sys.exc_info()[1], tally)  # type: ignore[arg-type]
                continue
            tally.missing += 1
            continue
        except PER_USER as exc:
            _failed(ref, exc, tally)
            continue
        tally.done += 1
        yield result


def _failed(ref: str, exc: core_errors.DomainError, tally: Tally) -> None:
    body: dict[str, Any] = exc.to_dict()
    body.pop("code", None)
    body.pop("message", None)
    emit_error(exc.code, f"{ref}: {exc.message}", body)
    tally.failed += 1
    if not tally.first_exit:
        tally.first_exit = exit_code_for(exc)
