"""Pages of users sorted by name and by status, beside email, through the read model.

Seeds PostgreSQL (a throwaway cluster unless USERMGMT_BENCH_POSTGRES_URL names
one; bench/seed.py) or SQLite, then times ``user_reads.list_rows`` as the
console pages: the first page, the next by cursor, a jump of 10,000 rows, a
jump to the middle. Median of 5 runs each; prints figures, asserts nothing.

    .venv/bin/python bench/user_sort_bench.py [--backend postgres|sqlite] [--users 1000000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

SORTS = ["email", "name", "-name", "status", "-status"]


def median_ms(call, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def measure(url: str, users: int) -> None:
    from usermgmt.core.config import load_settings
    from usermgmt.core.context import Actor
    from usermgmt.core.services import build_services

    services = build_services(load_settings(database_url=url))
    reads, actor = services.user_reads, Actor.operator("bench", "sort")
    try:
        print(f"{'sort':<8} {'first':>8} {'next':>8} {'+10,000':>9} {'middle':>9}  (ms)")
        for sort in SORTS:
            query = {"sort": sort, "limit": 100}
            first = reads.list_rows(actor, query)
            figures = [
                median_ms(lambda q=query: reads.list_rows(actor, q)),
                median_ms(lambda q=query, c=first.next_cursor: reads.list_rows(
                    actor, {**q, "cursor": c})),
                median_ms(lambda q=query: reads.list_rows(actor, q, skip=10_000)),
                median_ms(lambda q=query: reads.list_rows(actor, q, skip=users // 2)),
            ]  # fmt: skip
            print(f"{sort:<8} " + " ".join(f"{f:>8.1f}" for f in figures))
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--users", type=int, default=1_000_000)
    args = parser.parse_args()
    import seed

    with tempfile.TemporaryDirectory() as workdir:
        os.environ.setdefault("USERMGMT_DATA_DIR", workdir)
        if args.backend == "sqlite":
            url = f"sqlite:///{workdir}/sort-bench.db"
            seed.migrated(url)
            seed.seed_sqlite(url, args.users)
            measure(url, args.users)
            return
        with seed.postgres_database("user_sort_bench") as url:
            seed.migrated(url)
            if seed.user_count(url) < args.users:
                seed.seed_postgres(url, args.users)
            measure(url, args.users)


if __name__ == "__main__":
    main()
