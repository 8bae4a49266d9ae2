"""Import and export through the core."""

import bcrypt
import pytest

from usermgmt.core import errors

from ..helpers import STRONG, login


def _rows(*records):
    return list(enumerate(records, start=2))


def test_import_creates_users_keeps_hashes_and_hashes_plaintext(services, operator, ctx):
    existing_hash = bcrypt.hashpw(b"Imp0rted-Secret", bcrypt.gensalt(4)).decode()
    report = services.transfer.import_users(
        operator,
        ctx,
        _rows(
            {
                "email": "a@example.com",
                "username": "ada",
                "roles": "user;moderator",
                "password_hash": existing_hash,
            },
            {"email": "b@example.com", "first_name": "B", "password": STRONG},
            {"email": "c@example.com", "roles": ["admin"]},
        ),
    )
    assert report.committed and report.created == 3 and not report.errors
    assert login(services, ctx, "a@example.com", "Imp0rted-Secret").user.roles == [
        "moderator",
        "user",
    ]
    login(services, ctx, "b@example.com")
    assert services.user_reads.find(operator, "c@example.com").roles == ["admin"]
    assert services.audit.query(operator, {"action": "user.imported"}).data[0].changes
    assert services.audit.verify(operator).ok


def test_bad_rows_are_reported_and_nothing_written_by_default(services, operator, ctx):
    report = services.transfer.import_users(
        operator,
        ctx,
        _rows(
            {"email": "ok@example.com"},
            {"email": "broken"},
            {"email": "ok@example.com"},
            {"email": "p@example.com", "password": "weak"},
            {"email": "h@example.com", "password_hash": "plaintext"},
            {"email": "r@example.com", "roles": "emperor"},
            {"email": "x@example.com", "colour": "blue"},
            {"email": "n@example.com", "last_name": "Nul\x00"},
        ),
    )
    assert not report.committed
    assert [e.line for e in report.errors] == [3, 4, 5, 6, 7, 8, 9]
    assert "NUL" in report.errors[6].reason
    assert "appears twice" in report.errors[1].reason
    assert services.user_reads.list(operator).meta.total == 0
    assert services.audit.query(operator).data == []


def test_on_conflict_skip_and_update(services, operator, ctx):
    services.users.create(operator, ctx, {"email": "a@example.com", "first_name": "Old"})
    rows = _rows({"email": "a@example.com", "first_name": "New"}, {"email": "b@example.com"})
    failed = services.transfer.import_users(operator, ctx, rows)
    assert not failed.committed and "already exists" in failed.errors[0].reason
    skipped = services.transfer.import_users(operator, ctx, rows, on_conflict="skip")
    assert (skipped.created, skipped.skipped, skipped.committed) == (1, 1, True)
    assert services.user_reads.find(operator, "a@example.com").first_name == "Old"
    updated = services.transfer.import_users(operator, ctx, rows, on_conflict="update")
    assert (updated.updated, updated.skipped) == (1, 1)
    assert services.user_reads.find(operator, "a@example.com").first_name == "New"


def test_dry_run_writes_nothing(services, operator, ctx):
    report = services.transfer.import_users(
        operator, ctx, _rows({"email": "a@example.com"}), dry_run=True
    )
    assert report.created == 1 and not report.committed
    assert services.user_reads.list(operator).meta.total == 0


def test_interrupt_commits_nothing(services, operator, ctx):
    def rows():
        yield 2, {"email": "a@example.com"}
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        services.transfer.import_users(operator, ctx, rows())
    assert services.user_reads.list(operator).meta.total == 0


def test_export_round_trip(services, operator, ctx):
    services.transfer.import_users(
        operator,
        ctx,
        _rows(
            {
                "email": "a@example.com",
                "username": "ada",
                "first_name": "A",
                "roles": "moderator",
                "password": STRONG,
            },
            {"email": "b@example.com", "last_name": "B", "is_active": False},
        ),
    )
    gone = services.users.create(operator, ctx, {"email": "gone@example.com"})
    services.users.delete(operator, ctx, str(gone.id))
    exported = list(services.transfer.export_users(operator))
    assert sorted(r["email"] for r in exported) == ["a@example.com", "b@example.com"]
    assert "password_hash" not in exported[0]
    with_hashes = list(
        services.transfer.export_users(operator, include_deleted=True, include_password_hash=True)
    )
    by_email = {r["email"]: r for r in with_hashes}
    assert len(by_email) == 3 and by_email["a@example.com"]["password_hash"].startswith("$2b$")
    # What export wrote, import reads back: nothing changes.
    rows = [(i + 2, by_email[e]) for i, e in enumerate(["a@example.com", "b@example.com"])]
    report = services.transfer.import_users(operator, ctx, rows, on_conflict="update")
    assert report.committed and not report.errors and report.updated == 0
    assert report.skipped == 2


def test_export_streams_in_batches(services, operator, ctx):
    services.transfer.import_users(
        operator, ctx, _rows(*({"email": f"u{i}@example.com"} for i in range(25)))
    )
    emails = [r["email"] for r in services.transfer.export_users(operator, batch=4)]
    assert len(emails) == 25 and len(set(emails)) == 25


def test_import_requires_admin(services, ctx):
    from usermgmt.core.context import Actor

    with pytest.raises(errors.PermissionDenied):
        services.transfer.import_users(Actor.anonymous(), ctx, [])


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_an_import_leaves_no_pending_search_index_entries(services, operator, ctx):
    """PostgreSQL's GIN indexes collect new entries in a pending list that every search
    scans until autovacuum merges it; an import merges it before returning."""
    from sqlalchemy import text

    report = services.transfer.import_users(
        operator, ctx, _rows(*({"email": f"bulk{i}@example.com"} for i in range(300)))
    )
    assert report.committed and report.created == 300
    with services.db.engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT c.relname, gin_clean_pending_list(c.oid) FROM pg_class c "
                "JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'gin' AND c.relkind = 'i'"
            )
        ).all()
    assert len(left) >= 3  # users' trigram index and one per search-copy partition
    assert [pages for _, pages in left] == [0] * len(left)
    assert services.user_reads.list(operator, {"search": "bulk29"}).meta.total == 11


# ---- bad rows: file order and --max-errors ----------------------------------------


def test_bad_rows_are_reported_in_file_order_whatever_found_them(services, operator, ctx):
    services.users.create(operator, ctx, {"email": "taken@example.com"})
    report = services.transfer.import_users(
        operator,
        ctx,
        _rows(
            {"email": "taken@example.com"},  # found by the database look-up
            {"email": "broken"},  # found by validation
            {"email": "fine@example.com"},
        ),
    )
    assert [e.line for e in report.errors] == [2, 3]
    assert "already exists" in report.errors[0].reason
    assert report.errors[1].reason.startswith("email: ")


def _mixed(n_rows: int, bad_every: int):
    """Rows on lines 2.. where every ``bad_every``-th one is bad."""
    return [
        (line, {"email": "broken" if i % bad_every == 0 else f"u{i}@example.com"})
        for i, line in enumerate(range(2, n_rows + 2), start=1)
    ]


@pytest.mark.parametrize("chunk", [1000, 3])
@pytest.mark.parametrize("on_conflict", ["fail", "skip", "update"])
def test_max_errors_stops_at_that_bad_row_and_counts_the_rest(
    services, operator, ctx, monkeypatch, chunk, on_conflict
):
    from usermgmt.core.services import transfer

    monkeypatch.setattr(transfer, "CHUNK", chunk)
    seen = []
    report = services.transfer.import_users(
        operator,
        ctx,
        _mixed(20, 4),  # bad: lines 5, 9, 13, 17, 21
        on_conflict=on_conflict,
        max_errors=3,
        progress=seen.append,
    )
    assert [e.line for e in report.errors] == [5, 9, 13]
    assert (report.stopped_at_line, report.rows, report.not_checked) == (13, 12, 8)
    assert report.created == 9  # the good rows before the stop, as a dry run would say
    assert not report.committed  # a stopped import writes nothing, even with skip/update
    assert services.user_reads.list(operator, {}).meta.total == 0
    assert sum(seen) <= 20


def test_max_errors_none_reports_every_bad_row(services, operator, ctx):
    rows = [(line, {"email": f"bad{line}"}) for line in range(2, 2502)]
    report = services.transfer.import_users(operator, ctx, rows, max_errors=None)
    assert len(report.errors) == report.rows == 2500
    assert not report.stopped and report.not_checked == 0


def test_the_default_limit_says_where_it_stopped(services, operator, ctx):
    """It used to stop silently after the chunk holding the 1,000th bad row."""
    rows = [(line, {"email": f"bad{line}"}) for line in range(2, 1502)]
    report = services.transfer.import_users(operator, ctx, iter(rows))
    assert len(report.errors) == 1000 == report.rows
    assert (report.stopped_at_line, report.not_checked) == (1001, 500)


def test_max_errors_must_be_positive(services, operator, ctx):
    with pytest.raises(errors.ValidationError):
        services.transfer.import_users(operator, ctx, [], max_errors=0)
