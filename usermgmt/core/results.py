"""What the operations of the ports return besides the schemas' models.

They live here, apart from the services that make them, so that the ports
(``usermgmt.core.ports``) and the remote client build and read them without
importing SQLAlchemy or the ORM models. (The mail types are still in
``usermgmt.core.mail.delivery``: a remote mail command imports the database layer.)
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Literal, get_args

from usermgmt.core.errors import ValidationError

# ---- import ------------------------------------------------------------------


@dataclass
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did. ``rows`` were checked; when ``max_errors`` bad rows stopped
    it, ``stopped_at_line`` is the line of the last of them and ``not_checked`` counts
    the rows after it (read to the end of the file, never checked)."""

    created: int = 0
    updated: int = 0
    skipped: int = 0
    errors: list[RowError] = field(default_factory=list)
    committed: bool = False
    dry_run: bool = False
    rows: int = 0
    stopped_at_line: int | None = None
    not_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def stopped(self) -> bool:
        return self.stopped_at_line is not None


# ---- one action on many users ------------------------------------------------

BulkAction = Literal["lock", "unlock", "delete", "restore", "sign_out"]
BULK_ACTIONS: tuple[str, ...] = get_args(BulkAction)


@dataclass(frozen=True)
class BulkFailure:
    """A user a bulk action left as it was, and why (the error the single call raises)."""

    user_id: str
    code: str
    message: str


@dataclass
class BulkOutcome:
    """The ids of the users changed and those that were not (``failed``), as asked."""

    done: list[str] = field(default_factory=list)
    failed: list[BulkFailure] = field(default_factory=list)


# ---- purge -------------------------------------------------------------------


@dataclass
class PurgeReport:
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


# ---- the audit chain ---------------------------------------------------------

_HEAD = re.compile(r"^\s*(\d{1,18}):([0-9a-fA-F]{64})\s*$")


@dataclass(frozen=True)
class ChainHead:
    """The chain's tip: the last event's sequence number and hash (0 and zeros when empty)."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


def parse_head(text: str) -> ChainHead:
    """``SEQ:HASH`` as ``usermgmt audit head`` prints it."""
    match = _HEAD.match(text or "")
    if not match:
        raise ValidationError.for_field(
            "expect_head", "expected SEQ:HASH, as `usermgmt audit head` prints it"
        )
    return ChainHead(int(match.group(1)), match.group(2).lower())


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    bad_seq: int | None = None
    bad_id: uuid.UUID | None = None
    reason: str | None = None
    head: ChainHead | None = None  # the stored head (None: its row is missing)
    users_without_creation: tuple[uuid.UUID, ...] = ()  # the first MISSING_SHOWN
    users_without_creation_count: int = 0

    def describe(self) -> str:
        """One line for people: what is intact, or the first thing that is not."""
        if self.ok:
            return f"Audit chain intact: {self.checked:,} events checked; head {self.head}."
        if self.bad_seq is not None:
            event = f"event #{self.bad_seq}" + (f" ({self.bad_id})" if self.bad_id else "")
            return (
                f"Audit chain broken at {event}: {self.reason}; "
                f"the {self.checked:,} events before it are intact"
            )
        return f"Audit chain broken: {self.reason}"
