"""Users and roles through the core services, on both databases.

Covers usermgmt.core.services.users and .roles, and the read model's listing, search
and count plans (usermgmt.core.reads) over the users they write.
"""

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

import pytest

from usermgmt.core import errors
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.reads.users import UserReads

from ..helpers import STRONG, actor_of, login, make_user


def test_create_normalises_and_hides_secrets(services, operator, ctx):
    user = make_user(services, operator, ctx, "Ada.Lovelace@Example.COM", username="Ada_L")
    assert user.email == "ada.lovelace@example.com"
    assert user.username == "ada_l"
    assert user.roles == ["user"]
    dumped = user.model_dump_json()
    assert "password" not in dumped and STRONG not in dumped


@pytest.mark.parametrize("variant", ["ADA@example.com", "ada@EXAMPLE.com"])
def test_email_unique_case_insensitively(services, operator, ctx, variant):
    make_user(services, operator, ctx, "ada@example.com")
    with pytest.raises(errors.EmailExists):
        make_user(services, operator, ctx, variant)


def test_username_unique_case_insensitively(services, operator, ctx):
    make_user(services, operator, ctx, "a@example.com", username="ada")
    with pytest.raises(errors.UsernameExists):
        make_user(services, operator, ctx, "b@example.com", username="ADA")


@pytest.mark.parametrize(
    "data, field",
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "x@example.com", "username": "ab"}, "username"),
        ({"email": "x@example.com", "username": "bad name!"}, "username"),
        ({"email": "x@example.com", "first_name": "x" * 101}, "first_name"),
        ({"email": "x@example.com", "password": "short1A"}, "password"),
        ({"email": "x@example.com", "password": "nouppercase123"}, "password"),
        ({"email": "x@example.com", "password": "Password1"}, "password"),
        ({"email": "x@example.com", "password": "A1" + "é" * 40}, "password"),
        ({"email": "x@example.com", "roles": ["emperor"]}, "roles.0"),
        ({"email": "x@example.com", "password_hash": "$2b$"}, "password_hash"),
    ],
)
def test_create_validation(services, operator, ctx, data, field):
    with pytest.raises(errors.ValidationError) as info:
        services.users.create(operator, ctx, data)
    assert field in info.value.field_errors
    assert "é" * 40 not in str(info.value)


def test_password_over_72_bytes_names_the_limit(services, operator, ctx):
    with pytest.raises(errors.ValidationError, match="72 bytes"):
        services.users.create(operator, ctx, {"email": "x@example.com", "password": "Aa1" * 30})


def test_invited_user_without_password_gets_invitation(services, operator, ctx):
    from sqlalchemy import select

    from usermgmt.core.models import MailMessage

    user = services.users.create(operator, ctx, {"email": "new@example.com"})
    with services.db.read() as s:
        mails = s.execute(select(MailMessage).where(MailMessage.user_id == user.id)).scalars()
        assert [m.template for m in mails] == ["invitation"]
    with pytest.raises(errors.InvalidCredentials):
        login(services, ctx, "new@example.com")


def test_find_by_id_email_or_username(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com", username="ada")
    for ref in (str(user.id), "ADA@example.com", "ada"):
        assert services.user_reads.find(operator, ref).id == user.id
    with pytest.raises(errors.NotFound):
        services.user_reads.find(operator, "nobody")
    with pytest.raises(errors.NotFound):
        services.user_reads.get(operator, "not-a-uuid")


def test_ensure_is_idempotent(services, operator, ctx):
    spec = {"email": "bot@example.com", "first_name": "Bot", "roles": ["user"]}
    assert services.users.ensure(operator, ctx, spec)[0] == "created"
    assert services.users.ensure(operator, ctx, spec)[0] == "unchanged"
    outcome, user = services.users.ensure(operator, ctx, {**spec, "roles": ["moderator"]})
    assert outcome == "updated" and user.roles == ["moderator"]
    # Fields not given are left alone.
    outcome, user = services.users.ensure(operator, ctx, {"email": "bot@example.com"})
    assert outcome == "unchanged" and user.first_name == "Bot"


def test_self_service_cannot_mass_assign(services, operator, ctx):
    make_user(services, operator, ctx, "ada@example.com")
    me = actor_of(services, login(services, ctx, "ada@example.com"))
    for field, value in [("is_active", False), ("email_verified", True), ("roles", ["admin"])]:
        with pytest.raises(errors.ValidationError) as info:
            services.users.update(me, ctx, str(me.user_id), {field: value})
        assert field in info.value.field_errors
    updated = services.users.update(
        me, ctx, str(me.user_id), {"first_name": "Ada", "profile": {"bio": "Analyst"}}
    )
    assert updated.first_name == "Ada" and updated.profile.bio == "Analyst"


def test_permission_matrix(services, operator, ctx):
    plain = make_user(services, operator, ctx, "user@example.com")
    other = make_user(services, operator, ctx, "other@example.com")
    admin = make_user(services, operator, ctx, "admin@example.com", roles=["admin"])
    make_user(services, operator, ctx, "mod@example.com", roles=["moderator"])
    user = actor_of(services, login(services, ctx, "user@example.com"))
    mod = actor_of(services, login(services, ctx, "mod@example.com"))

    assert services.user_reads.get(user, str(plain.id)).id == plain.id
    with pytest.raises(errors.PermissionDenied):
        services.user_reads.get(user, str(other.id))
    with pytest.raises(errors.PermissionDenied):
        services.user_reads.list(user)
    assert services.user_reads.list(mod).meta.total == 4
    assert services.users.update(mod, ctx, str(other.id), {"first_name": "O"}).first_name == "O"
    with pytest.raises(errors.PermissionDenied):
        services.users.update(mod, ctx, str(admin.id), {"first_name": "A"})
    with pytest.raises(errors.PermissionDenied):
        services.users.delete(mod, ctx, str(other.id))
    with pytest.raises(errors.PermissionDenied):
        services.roles.grant(mod, ctx, str(other.id), "admin")
    with pytest.raises(errors.PermissionDenied):
        services.user_reads.list(mod, {"include_deleted": True})


def test_nobody_changes_their_own_roles(services, operator, ctx):
    make_user(services, operator, ctx, "a1@example.com", roles=["admin"])
    make_user(services, operator, ctx, "a2@example.com", roles=["admin"])
    me = actor_of(services, login(services, ctx, "a1@example.com"))
    with pytest.raises(errors.PermissionDenied):
        services.roles.revoke(me, ctx, str(me.user_id), "admin")


def test_last_active_admin_is_protected(services, operator, ctx):
    admin = make_user(services, operator, ctx, "admin@example.com", roles=["admin"])
    uid = str(admin.id)
    with pytest.raises(errors.Conflict):
        services.roles.revoke(operator, ctx, uid, "admin")
    with pytest.raises(errors.Conflict):
        services.users.update(operator, ctx, uid, {"is_active": False})
    with pytest.raises(errors.Conflict):
        services.users.delete(operator, ctx, uid)
    second = make_user(services, operator, ctx, "second@example.com", roles=["admin"])
    services.roles.revoke(operator, ctx, uid, "admin")
    assert services.user_reads.get(operator, uid).roles == []
    with pytest.raises(errors.Conflict):
        services.users.delete(operator, ctx, str(second.id))


def test_soft_delete_and_restore(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    result = login(services, ctx, "ada@example.com")
    services.users.delete(operator, ctx, str(user.id))
    with pytest.raises(errors.NotFound):
        services.user_reads.get(operator, str(user.id))
    with pytest.raises(errors.AuthenticationError):
        services.auth.authenticate_token(result.tokens.access_token)
    with pytest.raises(errors.AccountDisabled):
        login(services, ctx, "ada@example.com")
    with pytest.raises(errors.EmailExists):  # the email stays taken while restorable
        make_user(services, operator, ctx, "ada@example.com")
    deleted = services.user_reads.get(operator, str(user.id), include_deleted=True)
    assert deleted.deleted_at is not None
    assert services.user_reads.list(operator, {"include_deleted": True}).meta.total == 1
    assert services.user_reads.list(operator).meta.total == 0
    restored = services.users.restore(operator, ctx, str(user.id))
    assert restored.deleted_at is None
    with pytest.raises(errors.Conflict):
        services.users.restore(operator, ctx, str(user.id))


def test_lock_and_unlock(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    session = login(services, ctx, "ada@example.com")
    locked = services.users.lock(operator, ctx, str(user.id), minutes=30)
    assert locked.locked_until is not None
    with pytest.raises(errors.AuthenticationError):
        services.auth.authenticate_token(session.tokens.access_token)
    with pytest.raises(errors.AccountLocked):
        login(services, ctx, "ada@example.com")
    assert services.user_reads.list(operator, {"status": "locked"}).meta.total == 1
    services.users.unlock(operator, ctx, str(user.id))
    assert login(services, ctx, "ada@example.com").user.id == user.id


def test_email_change_unverifies_and_notifies_old_address(services, operator, ctx):
    from sqlalchemy import select

    from usermgmt.core.models import MailMessage

    user = make_user(services, operator, ctx, "old@example.com", email_verified=True)
    changed = services.users.update(operator, ctx, str(user.id), {"email": "New@Example.com"})
    assert changed.email == "new@example.com" and changed.email_verified is False
    with services.db.read() as s:
        sent = {(m.template, m.to_addr) for m in s.execute(select(MailMessage)).scalars()}
    assert ("email_changed", "old@example.com") in sent
    assert ("verify_email", "new@example.com") in sent


def test_replace_clears_omitted_fields(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com", first_name="Ada", last_name="L")
    replaced = services.users.replace(
        operator, ctx, str(user.id), {"email": "ada@example.com", "first_name": "Augusta"}
    )
    assert replaced.first_name == "Augusta" and replaced.last_name is None


def _seed_people(services, operator, ctx):
    people = [
        ("smith.john@example.com", "jsmith", "John", "Smith", ["user"]),
        ("jane@example.com", "jane", "Jane", "Goldsmith", ["moderator"]),
        ("bob@example.com", "bob_1", "Bob", "Jones", ["user"]),
        ("alice@example.com", "alice", "Alice", "Liddell", ["admin"]),
        ("percent@example.com", "pct_50", "Fifty", "Percent%", ["user"]),
    ]
    made = []
    for email, username, first, last, roles in people:
        made.append(
            make_user(
                services,
                operator,
                ctx,
                email,
                roles=roles,
                username=username,
                first_name=first,
                last_name=last,
            )
        )
    return made


def test_list_search_filters_and_sorts(services, operator, ctx):
    made = _seed_people(services, operator, ctx)
    emails = lambda page: [u.email for u in page.data]  # noqa: E731
    assert set(emails(services.user_reads.list(operator, {"search": "SMITH"}))) == {
        "smith.john@example.com",
        "jane@example.com",
    }
    assert emails(services.user_reads.list(operator, {"search": "%"})) == ["percent@example.com"]
    assert emails(services.user_reads.list(operator, {"search": "_1"})) == ["bob@example.com"]
    assert emails(services.user_reads.list(operator, {"role": "admin"})) == ["alice@example.com"]
    by_email = emails(services.user_reads.list(operator, {"sort": "email"}))
    assert by_email == sorted(by_email)
    assert emails(services.user_reads.list(operator, {"sort": "-email"})) == by_email[::-1]
    newest_first = emails(services.user_reads.list(operator))
    assert newest_first == [u.email for u in reversed(made)]
    services.users.update(operator, ctx, str(made[2].id), {"is_active": False})
    assert emails(services.user_reads.list(operator, {"status": "inactive"})) == ["bob@example.com"]
    # One status per user (usermgmt.core.status): inactive bob is not also unverified.
    assert services.user_reads.list(operator, {"status": "unverified"}).meta.total == 4
    with pytest.raises(errors.ValidationError):
        services.user_reads.list(operator, {"sort": "password_hash"})
    with pytest.raises(errors.ValidationError):
        services.user_reads.list(operator, {"limit": 101})


@pytest.mark.parametrize("sort", ["-created_at", "email", "-username", "last_login_at"])
def test_keyset_cursor_walks_every_row_once(services, operator, ctx, sort):
    _seed_people(services, operator, ctx)
    login(services, ctx, "bob@example.com")
    login(services, ctx, "jane@example.com")
    expected = [u.id for u in services.user_reads.list(operator, {"sort": sort, "limit": 100}).data]
    seen, cursor = [], None
    while True:
        page = services.user_reads.list(operator, {"sort": sort, "limit": 2, "cursor": cursor})
        assert page.meta.total == 5 and page.meta.total_pages == 3
        seen += [u.id for u in page.data]
        cursor = page.meta.next_cursor
        if cursor is None:
            break
    assert seen == expected
    offset_pages = [
        u.id
        for p in (1, 2, 3)
        for u in services.user_reads.list(operator, {"sort": sort, "limit": 2, "page": p}).data
    ]
    assert offset_pages == expected


def test_bad_cursor_is_a_validation_error(services, operator, ctx):
    with pytest.raises(errors.ValidationError):
        services.user_reads.list(operator, {"cursor": "garbage!"})
    _seed_people(services, operator, ctx)
    cursor = services.user_reads.list(operator, {"limit": 1}).meta.next_cursor
    with pytest.raises(errors.ValidationError):
        services.user_reads.list(operator, {"limit": 1, "cursor": cursor, "sort": "email"})


def test_roles_grant_revoke_set_and_list(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com")
    uid = str(user.id)
    assert services.roles.grant(operator, ctx, uid, "Moderator").roles == ["moderator", "user"]
    assert services.roles.revoke(operator, ctx, uid, "user").roles == ["moderator"]
    assert services.roles.set(operator, ctx, uid, ["admin", "user"]).roles == ["admin", "user"]
    with pytest.raises(errors.ValidationError):
        services.roles.grant(operator, ctx, uid, "emperor")
    assert [r.name for r in services.roles.list(operator)] == ["admin", "moderator", "user"]


def test_role_change_takes_effect_on_next_request(services, operator, ctx):
    user = make_user(services, operator, ctx, "ada@example.com", roles=["moderator"])
    result = login(services, ctx, "ada@example.com")
    assert "moderator" in actor_of(services, result).roles
    services.roles.revoke(operator, ctx, str(user.id), "moderator")
    assert actor_of(services, result).roles == frozenset()
    services.users.update(operator, ctx, str(user.id), {"is_active": False})
    with pytest.raises(errors.AuthenticationError):
        actor_of(services, result)


def test_trigger_kept_counts_match_real_counts(services, operator, ctx):
    from sqlalchemy import func, insert, select

    from usermgmt.core.models import User, UserCounts

    made = [make_user(services, operator, ctx, f"u{i}@example.com") for i in range(4)]
    services.users.delete(operator, ctx, str(made[0].id))
    services.users.delete(operator, ctx, str(made[1].id))
    services.users.restore(operator, ctx, str(made[1].id))
    services.transfer.import_users(
        operator, ctx, [(2, {"email": "i1@example.com"}), (3, {"email": "i2@example.com"})]
    )
    with services.db.write() as s:  # a bulk insert outside the services is counted too
        now = services.clock.now()
        raw = {"id": services.ids.new_uuid(), "created_at": now, "updated_at": now}
        s.execute(insert(User), [{**raw, "email": "raw@example.com", "search_text": "raw"}])
    with services.db.read() as s:
        counts = s.get(UserCounts, 1)
        live = s.execute(
            select(func.count()).select_from(User).where(User.deleted_at.is_(None))
        ).scalar_one()
    assert (counts.live, counts.deleted) == (live, 1) == (6, 1)
    assert services.user_reads.list(operator).meta.total == 6
    assert services.user_reads.list(operator, {"include_deleted": True}).meta.total == 7


@pytest.mark.parametrize("sort", ["-created_at", "email", "last_login_at"])
def test_rare_match_plan_returns_the_same_pages(services, operator, ctx, sort):
    _seed_people(services, operator, ctx)
    login(services, ctx, "jane@example.com")

    def walk(reads, query):
        pages, cursor = [], None
        while True:
            page = reads.list(operator, {**query, "cursor": cursor})
            pages.append([u.id for u in page.data])
            cursor = page.meta.next_cursor
            if cursor is None:
                return pages, page.meta.total

    query = {"search": "smith", "limit": 1, "sort": sort}
    with UserReads(services.db, Tuning(walk_limit=10**9)) as reads:
        walked = walk(reads, query)
    with UserReads(services.db, Tuning(walk_limit=0)) as reads:
        gathered = walk(reads, query)
    assert walked == gathered and gathered[1] == 2
    assert services.user_reads.list(operator, {"search": "no-such-text"}).data == []


def test_search_copy_follows_every_write(services, operator, ctx):
    """user_search (trigger-kept, migration 0005) agrees with users after each kind of write."""
    from sqlalchemy import insert, select

    from usermgmt.core.models import User, UserSearch

    def found(term, **extra):
        page = services.user_reads.list(operator, {"search": term, **extra})
        assert page.meta.total == len(page.data)
        return sorted(u.email for u in page.data)

    ada = make_user(services, operator, ctx, "ada@example.com", first_name="Ada")
    bob = make_user(services, operator, ctx, "bob@example.com", last_name="Lovelace")
    assert found("lovelace") == ["bob@example.com"]
    services.users.update(operator, ctx, str(bob.id), {"last_name": "Hopper"})
    assert found("lovelace") == [] and found("hopper") == ["bob@example.com"]
    services.users.update(operator, ctx, str(ada.id), {"email": "countess@example.com"})
    assert found("ada@") == [] and found("countess") == ["countess@example.com"]
    services.users.delete(operator, ctx, str(bob.id))
    assert found("hopper") == []
    assert found("hopper", include_deleted=True) == ["bob@example.com"]
    assert found("hopper", status="unverified") == []
    services.users.restore(operator, ctx, str(bob.id))
    assert found("hopper") == found("hopper", status="unverified") == ["bob@example.com"]
    services.transfer.import_users(operator, ctx, [(2, {"email": "imported@example.com"})])
    with services.db.write() as s:  # a bulk insert outside the services is copied too
        now = services.clock.now()
        raw = {"id": services.ids.new_uuid(), "created_at": now, "updated_at": now}
        s.execute(
            insert(User), [{**raw, "email": "raw@example.com", "search_text": "raw@example.com"}]
        )
    assert found("example") == [
        "bob@example.com",
        "countess@example.com",
        "imported@example.com",
        "raw@example.com",
    ]
    with services.db.write() as s:  # a hard delete cascades
        s.execute(User.__table__.delete().where(User.email == "raw@example.com"))
    with services.db.read() as s:
        copy = dict(s.execute(select(UserSearch.user_id, UserSearch.search_text)).all())
        live = dict(
            s.execute(select(User.id, User.search_text).where(User.deleted_at.is_(None))).all()
        )
    assert copy == live and len(copy) == 3


@pytest.mark.parametrize("extra", [{}, {"role": "user"}, {"sort": "email"}])
def test_short_term_gathered_or_scanned_gives_the_same_pages(services, operator, ctx, extra):
    """A 1-2 character search is answered from its gathered ids when few, else scanned."""
    _seed_people(services, operator, ctx)

    def walk(query, reads=services.user_reads):
        pages, cursor = [], None
        while True:
            page = reads.list(operator, {**query, "cursor": cursor})
            pages.append(([u.email for u in page.data], page.meta.total))
            cursor = page.meta.next_cursor
            if cursor is None:
                return pages

    with UserReads(services.db, Tuning(gather_limit=0)) as every_term_common:
        for term in ("sm", "o", "zz"):
            query = {"search": term, "limit": 1, **extra}
            assert walk(query) == walk(query, every_term_common)
    assert walk({"search": "sm", "limit": 1})[0][1] == 2
    assert walk({"search": "zz", "limit": 1}) == [([], 0)]


class RecordingExecutor(ThreadPoolExecutor):
    """Runs what it is given, and keeps each future: the half counts, in order."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.futures: list[Future] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = super().submit(fn, *args, **kwargs)
        self.futures.append(future)
        return future

    def taken(self) -> list:
        """The results of what was submitted since the last call."""
        futures, self.futures = self.futures, []
        return [f.result() for f in futures]


@pytest.mark.parametrize("query", [{"search": "smith"}, {"search": "example", "sort": "email"}])
def test_count_alongside_the_page_gives_the_same_page(services, operator, ctx, query):
    """On PostgreSQL a search with many matches counts on other connections while the
    page is read; one with few is gathered first: the same page either way."""
    _seed_people(services, operator, ctx)
    gathered = services.user_reads.list(operator, {**query, "limit": 2})  # few matches: gathered
    # Past the gather limits, PostgreSQL counts alongside the page.
    common = Tuning(index_gather_limit=0, gather_limit=0)
    with RecordingExecutor() as pool, UserReads(services.db, common, count_executor=pool) as reads:
        together = reads.list(operator, {**query, "limit": 2})
        assert len(pool.taken()) == (2 if services.db.is_postgres else 0)
        for other in (
            {"search": "sm"},
            {**query, "role": "user"},
            {**query, "include_deleted": True},
        ):
            reads.list(operator, other)
            assert pool.taken() == []  # counted with its page
    no_threads = replace(common, count_threads=0)
    with UserReads(services.db, no_threads) as reads:
        one_after_other = reads.list(operator, {**query, "limit": 2})
    assert gathered == together == one_after_other and together.meta.total >= 2


def test_search_counts_in_halves_add_up_on_postgres(services, operator, ctx):
    """On PostgreSQL the copy is two partitions by id (0008), counted one half each."""
    from sqlalchemy import text

    if not services.db.is_postgres:
        pytest.skip("the partitions are PostgreSQL's")
    _seed_people(services, operator, ctx)
    for i in range(20):
        make_user(services, operator, ctx, f"halves{i}@example.com", last_name=f"Smithers{i}")
    with services.db.read() as s:
        low = s.execute(text("SELECT count(*) FROM user_search_low")).scalar_one()
        high = s.execute(text("SELECT count(*) FROM user_search_high")).scalar_one()
        everyone = s.execute(text("SELECT count(*) FROM user_search")).scalar_one()
    assert low and high and low + high == everyone  # random ids land on both sides
    with (
        RecordingExecutor() as pool,
        UserReads(services.db, count_executor=pool) as reads,
        UserReads(services.db, Tuning(count_threads=0)) as one_count,
    ):
        for term in ("smith", "example", "halves1", "nobody-at-all"):
            total = reads.count(operator, {"search": term})
            halves = pool.taken()
            with services.db.read() as s:
                for half, partition in enumerate(("user_search_low", "user_search_high")):
                    n = s.execute(
                        text(f"SELECT count(*) FROM {partition} WHERE search_text LIKE :p"),
                        {"p": f"%{term}%"},
                    ).scalar_one()
                    assert halves[half] == n
            assert total == sum(halves) == one_count.count(operator, {"search": term})
    page = services.user_reads.list(operator, {"search": "smith", "limit": 3})
    assert page.meta.total == 22  # John Smith, Jane Goldsmith and 20 Smithers
    assert services.user_reads.count(operator, {"search": "smith"}) == 22
