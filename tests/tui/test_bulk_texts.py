"""What the console says about a bulk action: the confirmation, progress, the outcome."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from usermgmt.core.errors import ServiceUnavailable
from usermgmt.core.results import BulkFailure, BulkOutcome
from usermgmt.tui.screens import bulk


def users(n: int, deleted: set[int] = frozenset()):
    return [
        SimpleNamespace(id=uuid.UUID(int=i + 1), email=f"u{i}@example.com",
                        deleted_at="then" if i in deleted else None)
        for i in range(n)
    ]  # fmt: skip


def test_the_confirmation_names_the_count_and_the_first_five():
    title, text = bulk.confirmation(bulk.VERBS["delete"], users(1_000))
    assert title == "Delete 1,000 users?"
    assert text.endswith("u0@example.com, u1@example.com, u2@example.com, u3@example.com, "
                         "u4@example.com and 995 more.")  # fmt: skip
    assert bulk.confirmation(bulk.VERBS["sign_out"], users(1))[0] == "Sign out 1 user?"


def test_the_outcome_counts_names_three_failures_and_says_where_it_stopped():
    people = users(1_000, deleted={1})
    ids = [str(u.id) for u in people]
    outcome = BulkOutcome(
        done=ids[5:500],
        failed=[
            BulkFailure(ids[0], "NOT_FOUND", "User not found"),
            BulkFailure(ids[1], "NOT_FOUND", "User not found"),
            BulkFailure(ids[2], "CONFLICT", "Cannot lock the last active admin"),
            BulkFailure(ids[3], "NOT_FOUND", "User not found"),
            BulkFailure("not-shown", "NOT_FOUND", "User not found"),
        ],
    )
    text = bulk.outcome_text(
        bulk.VERBS["lock"], people, outcome, ServiceUnavailable("Database unavailable")
    )
    assert text == (
        "Locked 495 of 1,000; 5 failed: u0@example.com (deleted elsewhere); "
        "u1@example.com (deleted); u2@example.com (Cannot lock the last active admin); "
        "2 more; stopped (Database unavailable): 500 not tried."
    )
    assert bulk.outcome_text(bulk.VERBS["unlock"], people[:2], BulkOutcome(ids[:2])) == (
        "Unlocked 2 of 2."
    )
    assert bulk.progress(bulk.VERBS["restore"], 300, 1_000) == "Restoring… 300 of 1,000"
