"""List and search latency through the core list service, `total` included.

    python bench/core_bench.py                 # 1,000,000 on PostgreSQL, 100,000 on SQLite
    python bench/core_bench.py --pg-users 100000 --sqlite-users 20000 --runs 15

Prints a table: median and p95 (ms) per query, against the issue's targets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed

from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor
from usermgmt.core.services import build_services


def timed(fn, runs: int) -> tuple[float, float, object]:
    fn()  # warm-up
    samples, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], result


def deep_cursor(services, actor, depth_rows: int) -> str:
    """The cursor that starts the page `depth_rows` rows down (found by walking the offset once)."""
    page = services.user_reads.list(actor, {"limit": 1, "page": depth_rows, "sort": "-created_at"})
    return page.meta.next_cursor


def run(label: str, url: str, runs: int, targets: dict[str, float]) -> list[tuple]:
    services = build_services(load_settings(database_url=url))
    actor = Actor.operator("bench")
    users = services.user_reads
    cursor = deep_cursor(services, actor, 200_000 if label.startswith("PostgreSQL") else 20_000)
    deep_rows = "200,000" if label.startswith("PostgreSQL") else "20,000"
    cases = [
        ("first page, unfiltered", {"limit": 20}),
        ("search=smith", {"search": "smith", "limit": 20, "sort": "-created_at"}),
        ("search=a (1 char)", {"search": "a", "limit": 20}),
        ("search=zq (2 chars, rare)", {"search": "zq", "limit": 20}),
        ("search=lovelace", {"search": "lovelace", "limit": 20}),
        ("role=user&status=unverified", {"role": "user", "status": "unverified", "limit": 20}),
        (f"keyset page {deep_rows} rows deep", {"limit": 20, "cursor": cursor}),
        (
            f"OFFSET page {deep_rows} rows deep",
            {"limit": 20, "page": int(deep_rows.replace(",", "")) // 20},
        ),
    ]
    out = []
    for name, query in cases:
        med, p95, page = timed(lambda q=query: users.list(actor, q), runs)
        out.append((label, name, med, p95, page.meta.total, targets.get(name)))
    services.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pg-users", type=int, default=1_000_000)
    ap.add_argument("--sqlite-users", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=25)
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    args = ap.parse_args()
    results = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            seed.migrated(url)
            t0 = time.perf_counter()
            seed.seed_sqlite(url, args.sqlite_users)
            print(
                f"seeded {args.sqlite_users:,} users into SQLite in {time.perf_counter() - t0:.1f}s"
            )
            results += run(f"SQLite {args.sqlite_users:,}", url, args.runs, {"search=smith": 80.0})
    if not args.skip_pg:
        with seed.postgres_database() as url:
            seed.migrated(url)
            have = seed.user_count(url)
            if have >= args.pg_users:  # USERMGMT_BENCH_POSTGRES_URL to a seeded database
                print(f"using the {have:,} users already in PostgreSQL")
            else:
                t0 = time.perf_counter()
                seed.seed_postgres(url, args.pg_users)
                took = time.perf_counter() - t0
                print(f"seeded {args.pg_users:,} users into PostgreSQL in {took:.1f}s")
            results += run(
                f"PostgreSQL {args.pg_users:,}",
                url,
                args.runs,
                {
                    "first page, unfiltered": 25.0,
                    "search=smith": 25.0,
                    "search=a (1 char)": 150.0,
                    "search=zq (2 chars, rare)": 150.0,
                },
            )
    print()
    print(f"{'database':<20} {'query':<34} {'median ms':>10} {'p95 ms':>8} {'total':>9}  target")
    for label, name, med, p95, total, target in results:
        verdict = (
            "" if target is None else f"< {target:.0f} ms {'ok' if med < target else 'MISSED'}"
        )
        print(f"{label:<20} {name:<34} {med:>10.1f} {p95:>8.1f} {total:>9,}  {verdict}")


if __name__ == "__main__":
    main()
