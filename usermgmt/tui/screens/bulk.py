"""What the console says when one action is done to many marked users.

The confirmation names the count (and the first few users), the progress line
counts the users done, and one toast tells the outcome: how many of how many,
and which failed and why ("Locked 998 of 1,000; 2 failed: …").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from usermgmt.core.errors import DomainError
from usermgmt.core.results import BulkAction, BulkFailure, BulkOutcome
from usermgmt.core.schemas import UserOut

CHUNK = 100  # users per core call: the progress moves on after each
NAMED = 5  # users the confirmation names
FAILURES_TOLD = 3  # failures the toast names
GONE = "deleted elsewhere"  # what a NotFound means for a user that was on screen


@dataclass(frozen=True)
class Verb:
    action: BulkAction
    title: str  # Lock
    past: str  # Locked
    doing: str  # Locking
    what: str  # what it does, for the confirmation


VERBS: dict[str, Verb] = {
    v.action: v
    for v in (
        Verb(
            "lock",
            "Lock",
            "Locked",
            "Locking",
            "They cannot sign in until unlocked (l), and are signed out everywhere now.",
        ),
        Verb("unlock", "Unlock", "Unlocked", "Unlocking", "Their failed sign-ins are forgotten."),
        Verb(
            "delete",
            "Delete",
            "Deleted",
            "Deleting",
            "Soft delete: hidden from the list, signed out everywhere, unable to sign in. "
            "Restore them with r (x shows deleted users).",
        ),
        Verb("restore", "Restore", "Restored", "Restoring", "They can sign in again."),
        Verb(
            "sign_out",
            "Sign out",
            "Signed out",
            "Signing out",
            "Every session of each is revoked; their refresh tokens stop working at once.",
        ),
    )
}


def plural(n: int, word: str = "user") -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def confirmation(verb: Verb, users: Sequence[UserOut]) -> tuple[str, str]:
    """The title and text of the one confirmation: the count, then whom."""
    named = ", ".join(u.email for u in users[:NAMED])
    more = f" and {len(users) - NAMED:,} more" if len(users) > NAMED else ""
    return f"{verb.title} {plural(len(users))}?", f"{verb.what}\n\n{named}{more}."


def progress(verb: Verb, done: int, total: int) -> str:
    return f"{verb.doing}… {done:,} of {total:,}"


def outcome_text(
    verb: Verb,
    users: Sequence[UserOut],
    outcome: BulkOutcome,
    stopped: DomainError | None = None,
) -> str:
    """One line: ``Locked 998 of 1,000; 2 failed: a@x (not found), …``."""
    emails = {str(u.id): u.email for u in users}
    deleted = {str(u.id) for u in users if u.deleted_at is not None}

    def why(failure: BulkFailure) -> str:
        if failure.code != "NOT_FOUND":
            return failure.message
        return "deleted" if failure.user_id in deleted else GONE

    text = f"{verb.past} {len(outcome.done):,} of {len(users):,}"
    if outcome.failed:
        told = "; ".join(
            f"{emails.get(f.user_id, f.user_id)} ({why(f)})" for f in outcome.failed[:FAILURES_TOLD]
        )
        more = len(outcome.failed) - FAILURES_TOLD
        text += f"; {len(outcome.failed):,} failed: {told}" + (
            f"; {more:,} more" if more > 0 else ""
        )
    if stopped is not None:
        untried = len(users) - len(outcome.done) - len(outcome.failed)
        text += f"; stopped ({stopped.message}): {untried:,} not tried"
    return text + "."
