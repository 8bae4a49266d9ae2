"""The read model's thresholds and speed devices, in one place.

Each device can be switched off here; the read model then answers through its
general statements, with the same results (the tests compare both ways). The
defaults are what the benchmarks chose: bench/RESULTS.md has their figures.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_ID_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Tuning:
    """How :class:`usermgmt.core.reads.users.UserReads` finds its answers."""

    # An index walk in sort order that would visit more rows than this to fill a
    # page gathers the matches by one scan and sorts them instead.
    walk_limit: int = 50_000
    # A term too short for a trigram (1-2 characters) is gathered by one scan of
    # the search copy that stops past this many matches: a rare term's matches
    # are then its total and its pages; a common one is counted and walked.
    # 0: never gathered.
    gather_limit: int = 5_000
    # A term of 3+ characters is gathered from a trigram index (SQLite's FTS5
    # index, PostgreSQL's GIN index) up to this many matches; past it reading the
    # index costs more than the scan it spares. 0: never gathered.
    index_gather_limit: int = 250
    # Up to the largest bucket, a list of ids (gathered matches, a page's users)
    # is bound one parameter each, padded to the next bucket size: one constant
    # statement per size, which runs precompiled. Empty: an expanding IN.
    id_buckets: tuple[int, ...] = DEFAULT_ID_BUCKETS
    # An unfiltered page (no search, role or status) by one constant statement.
    constant_pages: bool = True
    # PostgreSQL: threads counting a common search's two partitions while its page
    # is read on a third connection. 0: count first, then read the page.
    count_threads: int = 4
