"""The console with many users: start to first page, search to rows, jumps, memory.

    python bench/tui_bench.py                          # SQLite 100,000 and PostgreSQL 1,000,000
    python bench/tui_bench.py --backend sqlite --sqlite-users 100000
    USERMGMT_BENCH_POSTGRES_URL=postgresql+psycopg://… python bench/tui_bench.py --backend postgres

Seeds with bench/seed.py (COPY on PostgreSQL, executemany on SQLite; one shared
bcrypt hash), then drives the real console headless (``App.run_test``) over the
real core and prints figures against the targets:

- start -> first page filled: a fresh process (interpreter, imports, services,
  app) until the first page of rows is on screen; target < 1 s
- typed search -> rows updated, from the moment the debounce fires; target < 300 ms
- jump 10,000 rows down (and again, deeper); should stay as fast as a first page
- page down through 10,000 rows, and the process RSS before and after: flat
- every key the operator uses on the users and detail screens (and the audit
  screen and back), posted as the terminal driver posts it, until the screen
  has settled: every visible row filled (the detail: its reads done); median
  and p95 of KEY_RUNS presses each, target < 100 ms median; and until no worker
  runs (the count and the pages around the screen in too)

Figures are printed, never asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

SIZE = (120, 36)
SEARCHES = [
    ("common first name", "james"),
    ("common, two words", "mary.smith"),
    ("one user by email", ".123457@"),
    ("rare, short", "bjarne.k"),
    ("no match", "zzqx"),
]
JUMP = 10_000
SEARCH_RUNS = 5
KEY_RUNS = 20
KEY_TARGET_MS = 100
AUDIT_BATCH = 20_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Marks:
    """Timestamps of pages and counts arriving in the LazyTable (patched in, bench only)."""

    def __init__(self) -> None:
        from usermgmt.tui.widgets.lazy_table import LazyTable

        self.pages: list[tuple[float, str, int, int]] = []
        self.counts: list[tuple[float, str, int]] = []
        stored, counted = LazyTable._stored, LazyTable._counted
        marks = self

        def _stored(table, generation, plan, rows, next_cursor):
            stored(table, generation, plan, rows, next_cursor)
            marks.pages.append((time.perf_counter(), table.id, generation, plan.page))

        def _counted(table, generation, total):
            counted(table, generation, total)
            marks.counts.append((time.perf_counter(), table.id, generation))

        LazyTable._stored, LazyTable._counted = _stored, _counted

    def page_time(self, table, page: int, after: float) -> float | None:
        for t, tid, gen, p in self.pages:
            if tid == table.id and gen == table.generation and p == page and t >= after:
                return t
        return None

    def count_time(self, table, after: float) -> float | None:
        for t, tid, gen in self.counts:
            if tid == table.id and gen == table.generation and t >= after:
                return t
        return None


async def until(pilot, predicate, timeout: float = 60.0) -> None:
    """Poll without disturbing: a plain sleep (pilot.pause() forces a screen update each
    time, which would compete with the workers for the GIL and inflate every figure)."""
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("the console did not get there in time")
        await asyncio.sleep(0.001)


# ---- a fresh process: start to first page -------------------------------------------


def probe(url: str, spawned_at: float) -> None:
    """Run in a child process: time from spawn to the first page of rows on screen,
    started the way `usermgmt tui` starts (a HeadStart builds the services and fetches
    the first page in threads while Textual is imported)."""
    t_main = time.time()
    from usermgmt.core.config import load_settings
    from usermgmt.tui.start import HeadStart

    start = HeadStart(load_settings(database_url=url), os_user="bench")
    from usermgmt.tui.app import UserMgmtApp

    t_imported = time.time()
    marks = Marks()
    app = UserMgmtApp(start.built, os_user="bench", retry_start=False, first_page=start.first_page)

    async def run() -> float:
        async with app.run_test(size=SIZE) as pilot:
            table = await _users_table(pilot)
            await until(pilot, lambda: marks.page_time(table, 0, 0) is not None)
            first = marks.page_time(table, 0, 0)
            return first - time.perf_counter() + time.time()

    t_page = asyncio.run(run())
    start.close()
    print(
        json.dumps(
            {
                "total": t_page - spawned_at,
                "interpreter": t_main - spawned_at,
                "imports": t_imported - t_main,
                "app_to_page": t_page - t_imported,
            }
        )
    )


async def _users_table(pilot):
    from usermgmt.tui.screens.users import UsersScreen

    await until(
        pilot,
        lambda: isinstance(pilot.app.screen, UsersScreen) and pilot.app.screen.query("#users"),
    )
    return pilot.app.screen.query_one("#users")


def cold_start(url: str, runs: int = 5) -> list[dict]:
    results = []
    for _ in range(runs):
        spawned = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--probe", url, str(spawned)],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "USERMGMT_DATA_DIR": tempfile.gettempdir()},
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


# ---- in process: search, jumps, scrolling, memory --------------------------------------


async def interact(services) -> dict:
    from usermgmt.tui.app import UserMgmtApp

    marks = Marks()
    app = UserMgmtApp(services, os_user="bench")
    figures: dict = {"search": [], "jumps": []}
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        table = await _users_table(pilot)
        await until(pilot, lambda: table.cache.exact and table.cache.has_page(0))
        figures["rows"] = table.row_count
        figures["rss_start"] = rss_mb()

        fired: list[float] = []
        set_filter = screen.set_filter

        def timed_set_filter(**changes):
            fired.append(time.perf_counter())
            set_filter(**changes)

        screen.set_filter = timed_set_filter
        search = screen.query_one("#search")
        for label, term in SEARCHES:
            timings = []
            for _attempt in range(1 + SEARCH_RUNS):  # the first is cold (database caches)
                fired.clear()
                search.value = ""
                await until(pilot, lambda: screen.filter.search == "" and table.cache.has_page(0))
                fired.clear()
                search.value = term  # one Changed; the debounce fires set_filter
                await until(pilot, lambda term=term: fired and screen.filter.search == term)
                t0 = fired[-1]
                await until(pilot, lambda t0=t0: marks.page_time(table, 0, t0) is not None)
                await until(pilot, lambda t0=t0: marks.count_time(table, t0) is not None)
                timings.append(
                    (
                        (marks.page_time(table, 0, t0) - t0) * 1000,
                        (marks.count_time(table, t0) - t0) * 1000,
                    )
                )
            warm = sorted(timings[1:])
            figures["search"].append(
                {
                    "what": f"{label} “{term}”",
                    "rows_ms": statistics.median(t[0] for t in warm),
                    "rows_max_ms": max(t[0] for t in warm),
                    "count_ms": statistics.median(t[1] for t in warm),
                    "cold_rows_ms": timings[0][0],
                    "matches": table.row_count,
                }
            )
            search.value = ""
        await until(pilot, lambda: screen.filter.search == "" and table.cache.has_page(0))
        await until(pilot, lambda: table.cache.exact)
        table.focus()

        # Jumps of 10,000 rows, from the top down.
        for _ in range(5):
            target = table.cursor_row + JUMP
            if target >= table.row_count:
                break
            t0 = time.perf_counter()
            table.move_cursor(target)
            page = target // table.cache.page_size
            await until(pilot, lambda p=page, t0=t0: marks.page_time(table, p, t0) is not None)
            figures["jumps"].append(
                {"to_row": target, "ms": (marks.page_time(table, page, t0) - t0) * 1000}
            )
        t0 = time.perf_counter()
        table.action_last()
        last_page = table.cursor_row // table.cache.page_size
        await until(pilot, lambda: marks.page_time(table, last_page, t0) is not None)
        figures["jump_end_ms"] = (marks.page_time(table, last_page, t0) - t0) * 1000
        table.action_first()
        await until(pilot, lambda: table.cursor_value is not None)

        # Page down through 10,000 rows twice, waiting for each page's rows like a reader:
        # memory may settle during the first stretch, it must not grow in the second.
        figures["rss_before_scroll"] = rss_mb()
        figures["stretches"] = []
        for stretch in range(2):
            end = min(JUMP * (stretch + 1), table.row_count - 1)
            waits = []
            t_start = time.perf_counter()
            while table.cursor_row < end:
                table.action_page_down()
                t0 = time.perf_counter()
                await until(pilot, lambda: table.cursor_value is not None)
                waits.append(time.perf_counter() - t0)
                await asyncio.sleep(0)
            figures["stretches"].append(
                {
                    "rows": end,
                    "s": time.perf_counter() - t_start,
                    "presses": len(waits),
                    "max_wait_ms": max(waits, default=0) * 1000,
                    "waited": sum(1 for w in waits if w > 0.002),
                    "rss": rss_mb(),
                }
            )
        figures["pages_held"] = len(table.cache.pages)
        figures["cursors_held"] = len(table.cache.cursors)
    return figures


# ---- key response: press -> screen settled ----------------------------------------------


def _settled(app, table_id: str) -> bool:
    """The rows on screen are there: every visible row of the table filled (a DataTable,
    the detail's: its reads done). A count may still be on its way (see _idle)."""
    tables = app.screen.query(f"#{table_id}")
    if not tables:
        return False
    table = tables.first()
    if not hasattr(table, "cursor_value"):
        return not any(w.is_running for w in app.workers)
    top = round(table.scroll_y)
    shown = range(top, min(top + table.scrollable_content_region.height - 1, table.row_count))
    return all(table.cache.row(i) is not None for i in shown)


def _idle(app) -> bool:
    """No worker running: pages around the screen and the count are in too."""
    return not any(w.is_running for w in app.workers)


CHARS = {"slash": "/"}


def seed_audit(services, events: int) -> float | None:
    """Chain events up to ``events`` (through the core, in batches): an audit log as long
    as a real one at this many users, for the audit screen's keys. None: already there."""
    from datetime import UTC, datetime

    from usermgmt.core import audit
    from usermgmt.core.context import Actor, RequestContext

    have = services.audit.head().seq
    if have >= events:
        return None
    actions = ("user.created", "user.updated", "user.login", "user.locked", "user.unlocked")
    op, ctx = Actor.operator("cli", "bench"), RequestContext(request_id="bench-seed")
    t0 = time.perf_counter()
    while have < events:
        batch = [
            audit.PendingEvent(actions[i % len(actions)], changes={"n": i})
            for i in range(have, min(have + AUDIT_BATCH, events))
        ]
        with services.db.write() as s:
            audit.record_many(s, op, ctx, batch, at=datetime.now(UTC), ids=services.ids)
        have += len(batch)
    return time.perf_counter() - t0


async def key_response(services) -> list[dict]:
    """Each key as the operator presses it; a pair (there and back) is timed per leg."""
    from textual import events

    from usermgmt.tui.app import UserMgmtApp
    from usermgmt.tui.screens.audit import AuditScreen
    from usermgmt.tui.screens.detail import DetailScreen
    from usermgmt.tui.screens.users import SORT_CYCLE, UsersScreen

    app = UserMgmtApp(services, os_user="bench", refresh_seconds=0)
    timings: dict[str, list[tuple[float, float]]] = {}

    def state() -> tuple:
        table = app.screen.query("LazyTable")
        first = table.first() if table else None
        return (id(app.screen), first and first.generation, first and first.cursor_row)

    async def timed(label: str, keys: tuple[str, ...], settled) -> None:
        """Keys posted as the terminal driver posts them (Pilot.press would add its own
        wait for the process to go idle); timed until the state changed and settled."""
        before = state()
        t0 = time.perf_counter()
        for key in keys:
            app.post_message(events.Key(key, key if len(key) == 1 else CHARS.get(key)))
        await until(pilot, lambda: state() != before and settled())
        t_rows = time.perf_counter()
        await until(pilot, lambda: _idle(app))
        timings.setdefault(label, []).append(
            ((t_rows - t0) * 1000, (time.perf_counter() - t0) * 1000)
        )

    def users_settled() -> bool:
        return isinstance(app.screen, UsersScreen) and _settled(app, "users")

    async with app.run_test(size=SIZE) as pilot:
        table = await _users_table(pilot)
        await until(pilot, lambda: table.cache.exact and users_settled())
        table.focus()
        await until(pilot, lambda: app.focused is table)
        for _ in range(KEY_RUNS):
            await timed("down (j)", ("j",), users_settled)
        for _ in range(KEY_RUNS):
            await timed("up (k)", ("k",), users_settled)
        for _ in range(KEY_RUNS):
            await timed("page down", ("pagedown",), users_settled)
        for _ in range(KEY_RUNS):
            await timed("page up", ("pageup",), users_settled)
        for _ in range(KEY_RUNS // 2):
            await timed("end", ("end",), users_settled)
            await timed("home", ("home",), users_settled)
        for _ in range(KEY_RUNS // 2):
            await timed(
                "enter (detail)",
                ("enter",),
                lambda: isinstance(app.screen, DetailScreen) and _settled(app, "events"),
            )
            await timed("escape (back to users)", ("escape",), users_settled)
        for _ in range(KEY_RUNS // 2):
            await timed(
                "a (audit log)",
                ("a",),
                lambda: isinstance(app.screen, AuditScreen) and _settled(app, "events"),
            )
            await timed("escape (back to users)", ("escape",), users_settled)
        # The audit screen's own keys: its end (the oldest event) and the order.
        app.post_message(events.Key("a", "a"))
        await until(
            pilot,
            lambda: isinstance(app.screen, AuditScreen) and _settled(app, "events") and _idle(app),
        )
        for _ in range(KEY_RUNS // 2):
            await timed("audit: end (oldest event)", ("end",), lambda: _settled(app, "events"))
            await timed("audit: home", ("home",), lambda: _settled(app, "events"))
        for _ in range(KEY_RUNS // 2):
            await timed("audit: o (oldest/newest first)", ("o",), lambda: _settled(app, "events"))
        for _ in range(KEY_RUNS // 2):
            await timed("audit: page down", ("pagedown",), lambda: _settled(app, "events"))
        app.post_message(events.Key("escape", None))
        await until(pilot, lambda: users_settled() and _idle(app))
        table.focus()
        await until(pilot, lambda: app.focused is table)
        screen = app.screen
        for _ in range(KEY_RUNS // 2):
            # The debounce is the console's choice, not a response time: it is taken out.
            t0 = time.perf_counter()
            app.post_message(events.Key("slash", "/"))
            await until(pilot, lambda: app.focused is not None and app.focused.id == "search")
            for key in "james":
                app.post_message(events.Key(key, key))
            await until(pilot, lambda: screen.filter.search == "james" and users_settled())
            t_rows = time.perf_counter()
            await until(pilot, lambda: _idle(app))
            debounce = app.ctx.search_debounce * 1000
            timings.setdefault("/ james (after the debounce)", []).append(
                ((t_rows - t0) * 1000 - debounce, (time.perf_counter() - t0) * 1000 - debounce)
            )
            await pilot.press("escape", "c")
            await until(
                pilot, lambda: screen.filter.search == "" and users_settled() and _idle(app)
            )
            table.focus()
            await until(pilot, lambda: app.focused is table)
        # `o` once through every sort of its cycle (each timed), back to the default.
        for _ in range(len(SORT_CYCLE)):
            await timed("o (sort by the next column)", ("o",), users_settled)
        assert screen.filter.sort == SORT_CYCLE[0]
        for _ in range(KEY_RUNS // 2):
            await timed("O (reverse the sort)", ("O",), users_settled)
        # The status order is computed for each page (no index can hold an order that
        # moves with time): its keys are timed on their own line.
        screen.set_filter(sort="status")
        await until(pilot, lambda: users_settled() and _idle(app))
        for _ in range(KEY_RUNS // 2):
            await timed("O on the status sort", ("O",), users_settled)
        screen.set_filter(sort=SORT_CYCLE[0])
        await until(pilot, lambda: users_settled() and _idle(app))
        await pilot.press("c")
        await until(pilot, lambda: users_settled() and _idle(app))
        table.focus()
        await until(pilot, lambda: app.focused is table)
        for _ in range(KEY_RUNS // 2):
            await timed("x (show / hide deleted)", ("x",), users_settled)
    return [
        {
            "key": label,
            "median_ms": statistics.median(t[0] for t in ms),
            "p95_ms": sorted(t[0] for t in ms)[max(0, round(len(ms) * 0.95) - 1)],
            "idle_ms": statistics.median(t[1] for t in ms),
            "runs": len(ms),
        }
        for label, ms in timings.items()
    ]


# ---- reporting -----------------------------------------------------------------------


def ok(value: float, target: float) -> str:
    return "ok" if value < target else "OVER"


def report(
    backend: str, users: int, seeded_s: float | None, cold: list[dict], figures: dict
) -> None:
    seeded = f"seeded in {seeded_s:.1f} s" if seeded_s is not None else "seeded earlier"
    print(f"\n== {backend}: {users:,} users ({seeded}) ==")
    best = min(cold, key=lambda r: r["total"])
    runs = ", ".join(f"{r['total'] * 1000:.0f}" for r in cold)
    print(
        f"start -> first page: {best['total'] * 1000:.0f} ms "
        f"(best of {len(cold)}; runs {runs} ms) "
        f"target < 1000 ms: {ok(best['total'], 1.0)}"
    )
    print(
        f"  interpreter {best['interpreter'] * 1000:.0f} ms, imports {best['imports'] * 1000:.0f}"
        f" ms, then app and services (side by side) to rows {best['app_to_page'] * 1000:.0f} ms"
    )
    print(
        f"typed search -> rows, after the debounce (median of {SEARCH_RUNS}, worst, first time),"
        " target < 300 ms:"
    )
    for s in figures["search"]:
        print(
            f"  {s['what']:<34} rows {s['rows_ms']:6.1f} ms {ok(s['rows_ms'], 300):>4}"
            f" (worst {s['rows_max_ms']:.0f}, first {s['cold_rows_ms']:.0f})"
            f"  count {s['count_ms']:6.1f} ms  {s['matches']:,} matches"
        )
    print("jump 10,000 rows down (to a filled page):")
    for j in figures["jumps"]:
        print(f"  to row {j['to_row']:>7,}: {j['ms']:7.1f} ms")
    print(f"  to the last row ({figures['rows']:,}): {figures['jump_end_ms']:.1f} ms")
    before = figures["rss_before_scroll"]
    for st in figures["stretches"]:
        print(
            f"page down to row {st['rows']:,}: {st['presses']} presses in {st['s']:.2f} s; "
            f"waited for rows on {st['waited']}, longest {st['max_wait_ms']:.1f} ms; "
            f"RSS {st['rss']:.1f} MB ({st['rss'] - before:+.1f} MB)"
        )
        before = st["rss"]
    print(
        f"memory (RSS): {figures['rss_start']:.1f} MB at start, "
        f"{figures['rss_before_scroll']:.1f} MB before scrolling; "
        f"{figures['pages_held']} pages ({figures['pages_held'] * 100} rows) and "
        f"{figures['cursors_held']} cursors held"
    )
    if "keys" not in figures:  # the key section is measured over the core only
        return
    seeded = figures["audit_seeded_s"]
    print(
        f"key -> rows on screen (median, p95), target < {KEY_TARGET_MS} ms median; "
        f"audit log of {figures['audit_events']:,} events"
        + (f" (seeded in {seeded:.0f} s)" if seeded is not None else "")
        + ":"
    )
    for k in figures["keys"]:
        print(
            f"  {k['key']:<32} {k['median_ms']:6.1f} ms  p95 {k['p95_ms']:6.1f} ms"
            f"  (all workers done {k['idle_ms']:6.1f} ms)"
            f"  ({k['runs']} presses) {ok(k['median_ms'], KEY_TARGET_MS):>4}"
        )


def measure(
    backend: str, url: str, seeded_s: float | None, audit_events: int | None = None
) -> None:
    """``audit_events``: how long an audit log to measure the audit screen on (None: one
    event per user shown, as their creation would have left)."""
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    cold = cold_start(url)
    services = build_services(load_settings(database_url=url))
    try:
        figures = asyncio.run(interact(services))
        wanted = figures["rows"] if audit_events is None else audit_events
        figures["audit_seeded_s"] = seed_audit(services, wanted)
        figures["audit_events"] = services.audit.head().seq
        figures["keys"] = asyncio.run(key_response(services))
    finally:
        services.close()
    report(backend, figures["rows"], seeded_s, cold, figures)


def measure_only(url: str, audit_events: int | None) -> None:
    measure("sqlite" if url.startswith("sqlite") else "postgres", url, None, audit_events)


def run_backend(backend: str, users: int, workdir: Path, audit_events: int | None) -> None:
    import seed

    if backend == "sqlite":
        path = workdir / f"tui-bench-{users}.db"
        url = f"sqlite:///{path}"
        seeded_s = None
        fresh = not path.exists()
        t0 = time.perf_counter()
        seed.migrated(url)  # also brings a database kept from an earlier run up to date
        if fresh:
            seed.seed_sqlite(url, users)
            seeded_s = time.perf_counter() - t0
        measure(backend, url, seeded_s, audit_events)
        return
    with seed.postgres_database("tui_bench") as url:
        t0 = time.perf_counter()
        seed.migrated(url)
        if seed.user_count(url) < users:  # USERMGMT_BENCH_POSTGRES_URL may be seeded already
            seed.seed_postgres(url, users)
        measure(backend, url, time.perf_counter() - t0, audit_events)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--probe":
        probe(sys.argv[2], float(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--sqlite-users", type=int, default=100_000)
    parser.add_argument("--pg-users", type=int, default=1_000_000)
    parser.add_argument(
        "--audit-events",
        type=int,
        help="chain audit events up to this many for the audit screen's keys "
        "(default: one per user shown)",
    )
    parser.add_argument(
        "--url",
        help="measure an already seeded database (no seeding), e.g. from an earlier run",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT / "bench" / "results",
        help="where the SQLite database is kept between runs (bench/results is git-ignored)",
    )
    args = parser.parse_args()
    # An installed package has its bytecode compiled; make sure ours has too (with
    # PYTHONDONTWRITEBYTECODE set, every start would compile usermgmt afresh).
    compileall.compile_dir(str(ROOT / "usermgmt"), quiet=1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("USERMGMT_DATA_DIR", str(args.workdir))
    if args.url:
        measure_only(args.url, args.audit_events)
        return
    if args.backend in ("sqlite", "both"):
        run_backend("sqlite", args.sqlite_users, args.workdir, args.audit_events)
    if args.backend in ("postgres", "both"):
        run_backend("postgres", args.pg_users, args.workdir, args.audit_events)


if __name__ == "__main__":
    main()
