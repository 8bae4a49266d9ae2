"""The audit log read oldest first, and a chain check that reports progress and can stop."""

import pytest

from usermgmt.core import audit, errors

from .helpers import make_user


def test_oldest_first_pages_on_by_cursor(services, operator, ctx):
    for i in range(5):
        make_user(services, operator, ctx, f"u{i}@example.com")
    first = services.audit.query(operator, {"order": "oldest", "limit": 2})
    assert [e.seq for e in first.data] == [1, 2] and first.meta.next_cursor == "2"
    rest = services.audit.query(
        operator, {"order": "oldest", "limit": 10, "cursor": first.meta.next_cursor}
    )
    assert [e.seq for e in rest.data] == [3, 4, 5] and rest.meta.next_cursor is None
    # newest first stays the default; the same cursor there goes the other way
    assert [e.seq for e in services.audit.query(operator, {"cursor": "3"}).data] == [2, 1]
    with pytest.raises(errors.ValidationError):
        services.audit.query(operator, {"order": "sideways"})


def test_verify_reports_progress_up_to_the_total(services, operator, ctx, monkeypatch):
    monkeypatch.setattr(audit, "PROGRESS_EVERY", 2)
    for i in range(5):
        make_user(services, operator, ctx, f"u{i}@example.com")
    seen: list[tuple[int, int]] = []
    report = services.audit.verify(operator, progress=lambda n, total: seen.append((n, total)))
    assert report.ok and report.checked == 5
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


def test_an_exception_from_progress_stops_the_check(services, operator, ctx, monkeypatch):
    monkeypatch.setattr(audit, "PROGRESS_EVERY", 2)
    for i in range(5):
        make_user(services, operator, ctx, f"u{i}@example.com")

    class Stop(Exception):
        pass

    seen: list[int] = []

    def progress(checked: int, total: int) -> None:
        seen.append(checked)
        if checked >= 2:
            raise Stop

    with pytest.raises(Stop):
        services.audit.verify(operator, progress=progress)
    assert seen == [0, 2]
    assert services.audit.verify(operator).ok  # nothing left behind: a later check runs
