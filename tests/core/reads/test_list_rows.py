"""UserService.list_rows / count / status_at: paging without a COUNT per page."""

from __future__ import annotations

import typing
from datetime import timedelta

from usermgmt.core.schemas import SortField
from usermgmt.core.status import status_at


def _make(services, operator, ctx, n):
    for i in range(n):
        services.users.create(
            operator, ctx, {"email": f"u{i:02d}@example.com", "username": f"user{i:02d}"}
        )


def test_list_rows_pages_with_cursor_and_offset(services, operator, ctx):
    _make(services, operator, ctx, 7)
    first = services.user_reads.list_rows(operator, {"limit": 3, "sort": "email"})
    assert [u.username for u in first.data] == ["user00", "user01", "user02"]
    second = services.user_reads.list_rows(
        operator, {"limit": 3, "sort": "email", "cursor": first.next_cursor}
    )
    by_offset = services.user_reads.list_rows(operator, {"limit": 3, "sort": "email", "page": 2})
    assert [u.email for u in second.data] == [u.email for u in by_offset.data]
    assert second.data[0].email == "u03@example.com"
    last = services.user_reads.list_rows(operator, {"limit": 3, "sort": "email", "page": 3})
    assert [u.email for u in last.data] == ["u06@example.com"]
    assert last.next_cursor is None


def test_count_matches_list_total(services, operator, ctx):
    _make(services, operator, ctx, 5)
    assert services.user_reads.count(operator, {"search": "user0"}) == 5
    assert services.user_reads.count(operator, {"search": "u03@"}) == 1
    page = services.user_reads.list(operator, {"search": "user0", "limit": 2})
    assert page.meta.total == services.user_reads.count(operator, {"search": "user0", "limit": 2})


def test_user_status_follows_the_model_rule(make_services, clock, operator, ctx):
    services = make_services(clock=clock)
    user = services.users.create(operator, ctx, {"email": "s@example.com"})
    assert status_at(user, clock.now()) == user.status == "unverified"
    locked = services.users.lock(operator, ctx, str(user.id), minutes=5)
    assert status_at(locked, clock.now()) == locked.status == "locked"
    later = clock.now() + timedelta(minutes=10)
    assert status_at(locked, later) == "unverified"
    clock.set(later)
    assert services.user_reads.get(operator, str(user.id)).status == "unverified"
    services.users.delete(operator, ctx, str(user.id))
    deleted = services.user_reads.get(operator, str(user.id), include_deleted=True)
    assert status_at(deleted, clock.now()) == deleted.status == "deleted"


def test_skip_jumps_after_a_cursor_or_from_the_top(services, operator, ctx):
    _make(services, operator, ctx, 12)
    everyone = [u.email for u in services.user_reads.list(operator, {"sort": "email"}).data]
    first = services.user_reads.list_rows(operator, {"limit": 3, "sort": "email"})
    after = services.user_reads.list_rows(
        operator, {"limit": 3, "sort": "email", "cursor": first.next_cursor}, skip=4
    )
    assert [u.email for u in after.data] == everyone[7:10]
    from_top = services.user_reads.list_rows(operator, {"limit": 3, "sort": "-email"}, skip=10)
    assert [u.email for u in from_top.data] == everyone[1::-1]
    assert from_top.next_cursor is None
    with_page = services.user_reads.list_rows(
        operator, {"limit": 3, "sort": "email", "page": 2}, skip=1
    )
    assert [u.email for u in with_page.data] == everyone[4:7]
    assert with_page.next_cursor is not None


def test_offset_pages_match_keyset_pages_with_filters(services, operator, ctx):
    _make(services, operator, ctx, 9)
    q = {"limit": 2, "sort": "-created_at", "search": "user0"}
    pages, cursor = [], None
    while True:
        page = services.user_reads.list_rows(
            operator, {**q, **({"cursor": cursor} if cursor else {})}
        )
        pages.append([u.id for u in page.data])
        cursor = page.next_cursor
        if cursor is None:
            break
    for n, ids in enumerate(pages):
        by_offset = services.user_reads.list_rows(operator, q, skip=2 * n)
        assert [u.id for u in by_offset.data] == ids


def test_skip_is_bounded(services, operator):
    import pytest

    from usermgmt.core.errors import ValidationError

    with pytest.raises(ValidationError):
        services.user_reads.list_rows(operator, {}, skip=-1)


SORTS = typing.get_args(SortField)


def test_gathered_matches_page_alike_on_both_paths(services, operator, ctx):
    """A search whose matches were gathered is paged by constant statements with one
    parameter per id, padded to a bucket size (Tuning.id_buckets), and so is an
    unfiltered list (Tuning.constant_pages): every sort, page and skip gives what the
    general statements give."""
    from usermgmt.core.reads.tuning import Tuning
    from usermgmt.core.reads.users import UserReads

    from ..helpers import login

    for i in range(11):  # 5 of them match "q": a bucket of 8, padded
        letter = "q" if i % 2 else "z"
        services.users.create(
            operator,
            ctx,
            {
                "email": f"{letter}{i:02d}@example.com",
                "username": f"{letter}name{i:02d}",
                "password": "Correct-Horse-42",
            },
        )
    for email in ("q03@example.com", "q07@example.com", "z02@example.com"):
        login(services, ctx, email, password="Correct-Horse-42")  # some last_login_at set
    deleted = services.user_reads.find(operator, "q05@example.com")
    services.users.delete(operator, ctx, str(deleted.id))  # deleted users never match

    def answers(reads):
        out = {}
        for sort in SORTS:
            for term in ("q", "qname", "example", None, "deleted too"):
                q = {"search": term, "sort": sort, "limit": 2}
                if term == "deleted too":  # everyone, the deleted included
                    q = {"sort": sort, "limit": 2, "include_deleted": True}
                pages = [reads.list(operator, {**q, "page": p}) for p in (1, 2, 3, 4)]
                out[sort, term] = (
                    pages[0].meta.total,
                    [[u.email for u in page.data] for page in pages],
                    [u.email for u in reads.list_rows(operator, q, skip=1).data],
                )
        return out

    fast = answers(services.user_reads)
    with UserReads(services.db, Tuning(id_buckets=(), constant_pages=False)) as general:
        assert answers(general) == fast
    assert fast["email", "q"][0] == 4
    assert fast["email", "q"][1][:2] == [
        ["q01@example.com", "q03@example.com"],
        ["q07@example.com", "q09@example.com"],
    ]
    assert fast["-last_login_at", "qname"][1][0] == ["q07@example.com", "q03@example.com"]
    assert (fast["email", None][0], fast["email", "deleted too"][0]) == (10, 11)
