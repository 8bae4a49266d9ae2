"""Bulk lock of 1,000 marked users from the console, over the real core.

Seeds a database (bench/seed.py; PostgreSQL in a throwaway cluster unless
USERMGMT_BENCH_POSTGRES_URL names one, or SQLite), drives the console headless
(``App.run_test``): marks 1,000 rows (space on the first, V on the last), presses
``l`` and ``y``, and times the confirmation to the outcome's toast. For comparison
it also times the same lock through the core alone, as one bulk call per 100
users and (``--baseline``) as one ``users.lock`` call per user. Prints figures;
asserts nothing.

    .venv/bin/python bench/tui_bulk_bench.py [--backend postgres|sqlite]
        [--users 10000] [--marked 1000] [--baseline]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))


async def until(pilot, predicate, timeout: float = 120.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not get there in time")
        await pilot.pause(0.005)


async def console_lock(services, marked: int) -> dict[str, float]:
    from usermgmt.tui.app import UserMgmtApp
    from usermgmt.tui.screens.confirm import ConfirmScreen
    from usermgmt.tui.screens.users import UsersScreen

    app = UserMgmtApp(services, os_user="bench", search_debounce=0.01)
    shown: list[str] = []
    figures: dict[str, float] = {}

    def record(message) -> None:
        from textual.notifications import Notify

        if isinstance(message, Notify):
            shown.append(message.notification.message)

    async with app.run_test(size=(120, 36), message_hook=record) as pilot:
        await until(pilot, lambda: isinstance(app.screen, UsersScreen))
        screen = app.screen
        table = screen.query_one("#users")
        await until(pilot, lambda: table.cursor_value is not None)
        t0 = time.perf_counter()
        await pilot.press("space")
        table.move_cursor(marked - 1)
        await pilot.press("V")
        await until(pilot, lambda: len(screen.marks) == marked)
        figures["mark"] = time.perf_counter() - t0
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        before = len(shown)
        t0 = time.perf_counter()
        await pilot.press("y")
        await until(pilot, lambda: len(shown) > before and screen.bulk_running is None)
        figures["lock"] = time.perf_counter() - t0
        await until(pilot, lambda: not table.fetching)
        figures["lock_and_reload"] = time.perf_counter() - t0
        figures["toast"] = shown[-1]
    return figures


def first_ids(services, actor, n: int, skip: int) -> list[str]:
    ids: list[str] = []
    query = {"limit": 100, "sort": "email"}
    rows = services.user_reads.list_rows(actor, query, skip=skip)
    while True:
        ids += [str(u.id) for u in rows.data]
        if len(ids) >= n or rows.next_cursor is None:
            return ids[:n]
        rows = services.user_reads.list_rows(actor, {**query, "cursor": rows.next_cursor})


def core_lock(services, n: int, baseline: bool) -> dict[str, float]:
    from usermgmt.core.context import Actor, RequestContext

    actor, ctx = Actor.operator("bench", "bulk"), RequestContext(request_id="bench-bulk")
    figures = {}
    ids = first_ids(services, actor, n, skip=n)  # other users than the console's
    t0 = time.perf_counter()
    for start in range(0, len(ids), 100):
        services.users.bulk(actor, ctx, "lock", ids[start : start + 100])
    figures["core_bulk"] = time.perf_counter() - t0
    if baseline:
        ids = first_ids(services, actor, n, skip=2 * n)
        t0 = time.perf_counter()
        for user_id in ids:
            services.users.lock(actor, ctx, user_id)
        figures["core_one_by_one"] = time.perf_counter() - t0
    return figures


def measure(url: str, marked: int, baseline: bool) -> None:
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    services = build_services(load_settings(database_url=url))
    try:
        console = asyncio.run(console_lock(services, marked))
        core = core_lock(services, marked, baseline)
    finally:
        services.close()
    print(f"marking {marked:,} rows (space, V; rows fetched as needed): {console['mark']:.2f} s")
    print(f"bulk lock from the console, y to the toast: {console['lock']:.2f} s")
    print(f"  … and the table reloaded: {console['lock_and_reload']:.2f} s")
    print(f"  toast: {console['toast']}")
    print(f"core alone, bulk calls of 100: {core['core_bulk']:.2f} s")
    if "core_one_by_one" in core:
        print(f"core alone, one users.lock per user: {core['core_one_by_one']:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--marked", type=int, default=1_000)
    parser.add_argument("--baseline", action="store_true", help="also one lock call per user")
    args = parser.parse_args()
    if args.users < 3 * args.marked:
        parser.error("--users must be at least three times --marked")
    import seed

    with tempfile.TemporaryDirectory() as workdir:
        os.environ.setdefault("USERMGMT_DATA_DIR", workdir)
        if args.backend == "sqlite":
            url = f"sqlite:///{workdir}/bulk-bench.db"
            seed.migrated(url)
            seed.seed_sqlite(url, args.users)
            measure(url, args.marked, args.baseline)
            return
        with seed.postgres_database("tui_bulk_bench") as url:
            seed.migrated(url)
            if seed.user_count(url) < args.users:
                seed.seed_postgres(url, args.users)
            measure(url, args.marked, args.baseline)


if __name__ == "__main__":
    main()
