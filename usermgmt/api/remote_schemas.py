"""The shapes of the operations remote mode needs (see resources_remote.py).

Each output is what the CLI prints for the same command (``-o json``), so a
remote CLI prints the same bytes and exits with the same code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from usermgmt.core.formats import RecordFormat
from usermgmt.core.schemas import (
    EMAIL_MAX,
    Password,
    QueryBool,
    QueryText,
    UserOut,
    WriteModel,
    query_int,
)

Reference = Annotated[QueryText, Field(min_length=1, max_length=EMAIL_MAX)]


class InfoOut(BaseModel):
    version: str
    # The database's Alembic revision (None: it has no schema yet).
    schema_revision: str | None
    database: Literal["sqlite", "postgresql"]
    me: UserOut


class ResolveQuery(WriteModel):
    ref: Reference = Field(description="A user's UUID, email or username")
    include_deleted: QueryBool = Field(False, description="Also a soft-deleted user (admins)")


class EnsureOut(BaseModel):
    result: Literal["created", "updated", "unchanged"]
    user: UserOut


class ImportQuery(WriteModel):
    format: RecordFormat | None = Field(
        None,
        description="csv, json (an array) or jsonl. Default: from the Content-Type "
        "(text/csv, application/json, application/x-ndjson), else from the first character.",
    )
    on_conflict: Literal["fail", "skip", "update"] = Field(
        "fail",
        description="When the email exists or a row is bad: fail (write nothing), skip "
        "the row, or update the user",
    )
    dry_run: QueryBool = Field(False, description="Check every row and report; write nothing")
    max_errors: query_int(0, 1_000_000_000) = Field(
        1000,
        description="Stop checking at the N-th bad row and write nothing; 0: no limit",
    )
    filename: Annotated[QueryText, Field(min_length=1, max_length=255)] | None = Field(
        None, description="The file's name, used in messages about it (default: upload)"
    )


class RowErrorOut(BaseModel):
    line: int
    reason: str


class ImportReportOut(BaseModel):
    """The report `users import -o json` prints, but for its ``file``."""

    rows: int
    created: int
    updated: int
    skipped: int
    errors: list[RowErrorOut]
    committed: bool
    dry_run: bool
    stopped_at_line: int | None
    not_checked: int


class ExportQuery(WriteModel):
    format: RecordFormat = Field("jsonl", description="csv, json (an array) or jsonl")
    include_deleted: QueryBool = Field(False, description="Also soft-deleted users")
    include_password_hash: QueryBool = Field(
        False, description="Add each bcrypt hash (password_hash); the export is audited"
    )


class VerifyIn(WriteModel):
    # Checked by the core (as `audit verify --expect-head` is): SEQ:HASH.
    expect_head: Annotated[str, Field(max_length=200)] | None = Field(
        None, description="A head recorded earlier (SEQ:HASH) that must still be in the chain"
    )


class VerifyOut(BaseModel):
    """What `audit verify -o json` prints, and ``description``: its line for people."""

    ok: bool
    checked: int
    bad_seq: int | None
    bad_id: str | None
    reason: str | None
    head: str | None
    users_without_creation: list[str]
    users_without_creation_count: int
    description: str


class PurgeQuery(WriteModel):
    dry_run: QueryBool = Field(False, description="Count what would be deleted; delete nothing")


class PurgeOut(BaseModel):
    dry_run: bool
    # Rows deleted (or, in a dry run, that would be) per kind, in the order purged.
    counts: dict[str, int]
    total: int


class MailQuery(WriteModel):
    status: Literal["pending", "sent", "failed"] | None = None
    limit: query_int(1, 1000) = 100
    cursor: Annotated[QueryText, Field(max_length=500)] | None = Field(
        None, description="meta.next_cursor of the previous page"
    )


class DeliverQuery(WriteModel):
    limit: query_int(1, 1_000_000) | None = Field(
        None, description="Try at most N messages in this run"
    )


class DeliverOut(BaseModel):
    sent: int
    retried: int
    failed: int


class SetPasswordIn(WriteModel):
    password: Password


class AuditHeadOut(BaseModel):
    """What `audit head -o json` prints."""

    seq: int
    hash: str
    head: str  # SEQ:HASH, for `audit verify --expect-head`
