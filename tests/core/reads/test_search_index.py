"""SQLite's trigram index of the search copy (migration 0009): same answers as the scan."""

import contextlib
import sqlite3

import pytest
from sqlalchemy import text

from usermgmt.core.reads.search_index import SearchIndex
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.reads.users import UserReads

from ..helpers import make_user

NAMES = [
    ("quote@example.com", 'Say "Hi"', "O'Brien"),
    ("percent@example.com", "Fifty%", "Under_score"),
    ("slash@example.com", "Back\\slash", "Star*Name"),
    ("syntax@example.com", "NEAR(x y)", "OR AND NOT"),
    ("colon@example.com", "col:umn", "-minus ^caret"),
    ("accent@example.com", "Zoë", "Straße"),
    ("cjk@example.com", "日本語", "テスト"),
    ("ada@example.com", "Ada", "Lovelace"),
    ("ada2@example.com", "Adam", "Lovelace-Byron"),
    ("grace@example.com", "Grace", "Hopper"),
]
TERMS = [
    '"hi"',
    'say "',
    "o'b",
    "fifty%",
    "%",
    "y%",
    "under_",
    "r_s",
    "back\\",
    "\\sl",
    "star*",
    "r*n",
    "near(x",
    "or and",
    "and not",
    "col:",
    "-min",
    "^car",
    "zoë",
    "straße",
    "日本語",
    "本語",
    "テスト",
    "lovelace",
    "love",
    "ada",
    "adam",
    "@example.com",
    "example",
    "hopper",
    "nobody-has-this",
    "e.c",
    "  ",
]


def _trigram_tokenizer() -> bool:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        try:
            conn.execute("CREATE VIRTUAL TABLE probe USING fts5(t, tokenize='trigram')")
        except sqlite3.OperationalError:
            return False
    return True


# Where the SQLite library has no FTS5 trigram tokenizer, migration 0009 makes no
# index and every search scans: the rest of the suite covers that path.
pytestmark = pytest.mark.skipif(
    not _trigram_tokenizer(), reason="this SQLite has no FTS5 trigram tokenizer"
)


@pytest.fixture
def backend():
    """These are SQLite's: PostgreSQL has its trigram GIN index instead."""
    return "sqlite"


@pytest.fixture
def people(services, operator, ctx):
    for email, first, last in NAMES:
        make_user(services, operator, ctx, email, first_name=first, last_name=last)


def _results(reads, operator, term, **extra):
    """A search's total and page, checked against what the console asks (count, rows)."""
    query = {"search": term, "limit": 100, **extra}
    page = reads.list(operator, query)
    emails = [u.email for u in page.data]
    count = reads.count(operator, query)
    assert count == page.meta.total
    rows = reads.list_rows(operator, query, total=count)
    assert [u.email for u in rows.data] == emails
    return page.meta.total, emails


class RecordingIndex(SearchIndex):
    """The index, noting each term looked up in it (the lookups still run)."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.looked_up: list[str] = []

    def matching_ids(self, conn, term, limit):
        self.looked_up.append(term)
        return super().matching_ids(conn, term, limit)


def test_the_database_has_the_index(services):
    assert SearchIndex(services.db.engine).exists()


@pytest.mark.parametrize("extra", [{}, {"role": "user"}, {"sort": "-email"}])
def test_index_finds_exactly_what_the_scan_finds(services, operator, people, extra):
    index = RecordingIndex(services.db.engine)
    with UserReads(services.db, search_index=index) as reads:
        indexed = {term: _results(reads, operator, term, **extra) for term in TERMS}
    assert set(index.looked_up) == {t.strip().lower() for t in TERMS if len(t.strip()) >= 3}

    with UserReads(services.db, Tuning(index_gather_limit=0)) as reads:  # never looked up
        scanned = {term: _results(reads, operator, term, **extra) for term in TERMS}
    assert indexed == scanned
    assert indexed["lovelace"][0] == 2 and indexed["nobody-has-this"] == (0, [])
    assert indexed["%"][0] == 1 and indexed["r_s"][0] == 1  # wildcards are literal


def test_past_the_index_limit_a_term_is_counted_by_the_scan_and_walked(services, operator, people):
    """A common term gives up on the index (Tuning.index_gather_limit): the same answers."""
    reads = services.user_reads
    gathered = {t: _results(reads, operator, t) for t in ("example", "love", "ada")}
    index = RecordingIndex(services.db.engine)
    with UserReads(services.db, Tuning(index_gather_limit=1), search_index=index) as reads:
        assert {t: _results(reads, operator, t) for t in gathered} == gathered
    # Tried by list and count, then scanned; list_rows, told the total, does not try.
    assert index.looked_up == [term for term in gathered for _ in range(2)]
    assert services.user_reads.count(operator, {"search": "example"}) == len(NAMES)


def _integrity_check(services) -> None:
    """FTS5 compares the index with the copy it indexes; raises if they differ."""
    with services.db.write() as s:
        s.execute(
            text(
                "INSERT INTO user_search_fts (user_search_fts, rank) VALUES ('integrity-check', 1)"
            )
        )


def test_index_follows_writes_and_survives_vacuum(services, operator, ctx, people):
    _integrity_check(services)
    grace = services.user_reads.find(operator, "grace@example.com")
    services.users.update(operator, ctx, str(grace.id), {"last_name": "Brewster"})
    assert _results(services.user_reads, operator, "hopper") == (0, [])
    assert _results(services.user_reads, operator, "brewster") == (1, ["grace@example.com"])
    services.users.delete(operator, ctx, str(grace.id))
    assert _results(services.user_reads, operator, "brewster") == (0, [])
    services.users.restore(operator, ctx, str(grace.id))
    assert _results(services.user_reads, operator, "brewster") == (1, ["grace@example.com"])
    with services.db.write() as s:  # a hard delete cascades to the copy and its index
        s.execute(text("DELETE FROM users WHERE email = 'ada@example.com'"))
    _integrity_check(services)

    path = services.db.url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("VACUUM")  # which may renumber rowids that are not an INTEGER PRIMARY KEY
    _integrity_check(services)
    assert _results(services.user_reads, operator, "lovelace") == (1, ["ada2@example.com"])
    assert _results(services.user_reads, operator, "brewster") == (1, ["grace@example.com"])


def test_without_the_index_searches_scan_the_copy(make_services, operator, ctx, people):
    """SQLite without FTS5's trigram tokenizer: migration 0009 makes no index."""
    before = make_services()
    expected = {t: _results(before.user_reads, operator, t) for t in ("lovelace", "example", "ada")}
    with before.db.engine.connect() as conn:
        for name in ("insert", "delete", "update"):
            conn.exec_driver_sql(f"DROP TRIGGER user_search_fts_{name}")
        conn.exec_driver_sql("DROP TABLE user_search_fts")
        conn.commit()
    after = make_services()  # a new engine looks again
    assert not SearchIndex(after.db.engine).exists()
    assert {t: _results(after.user_reads, operator, t) for t in expected} == expected
    make_user(after, operator, ctx, "new@example.com", last_name="Lovelace")
    assert _results(after.user_reads, operator, "lovelace")[0] == 3
