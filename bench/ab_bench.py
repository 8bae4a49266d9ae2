"""The core's read latencies of two checkouts, measured in alternation on one database.

    .venv/bin/python bench/ab_bench.py --a ../base-checkout --b . --users 100000

Each checkout needs its own ``.venv`` (``make venv``). One worker process per
checkout (its own venv, so its own code) serves the same seeded database
(SQLite, and PostgreSQL from tests/pgserver.py or USERMGMT_BENCH_POSTGRES_URL,
seeded by bench/seed.py if short of users); the driver asks them in turn, a
few calls at a time in random order, so the machine's drift (other processes,
the CPU's clock) hits both alike. Prints per case the median (ms) of each and
the median of the paired differences (b minus a). Figures only.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PASSWORD = "Bench-AB-Passw0rd!"

# name -> the list query (None: the GET of one user, token check included).
CASES = {
    "get one user (token check + read)": None,
    "first page, unfiltered": {"limit": 20},
    "page 50, unfiltered": {"limit": 20, "page": 50},
    "search=smith": {"search": "smith", "limit": 20},
    "search=lovelace": {"search": "lovelace", "limit": 20},
    "search=4242@ (10 matches)": {"search": "4242@", "limit": 20},
    "search=.123457@ (one in 1M, none in 100k)": {"search": ".123457@", "limit": 20},
    "search=a (1 char)": {"search": "a", "limit": 20},
    "search=zq (2 chars, none)": {"search": "zq", "limit": 20},
    "search=sl (2 chars, 295)": {"search": "sl", "limit": 20},
    "role=user&status=unverified": {"role": "user", "status": "unverified", "limit": 20},
    "OFFSET page 20,000 rows deep": {"limit": 20, "page": 1_000},
}


# ---- the worker: one checkout's code, driven over stdin/stdout -----------------------


def worker(url: str) -> None:
    import usermgmt
    from usermgmt.core.config import load_settings
    from usermgmt.core.context import Actor, RequestContext
    from usermgmt.core.services import build_services

    services = build_services(load_settings(database_url=url, bcrypt_rounds=4))
    # The read model where the checkout has one; UserService before it had.
    reads = getattr(services, "user_reads", None) or services.users
    actor = Actor.operator("bench")
    ctx = RequestContext(ip="127.0.0.1")
    email = "ab-admin@example.com"
    services.users.ensure(actor, ctx, {"email": email, "password": PASSWORD, "roles": ["admin"]})
    token = services.auth.login(ctx, {"email": email, "password": PASSWORD}).tokens.access_token
    target = str(reads.list(actor, {"limit": 1, "page": 1000}).data[0].id)

    def get() -> None:
        scope = services.db.open_scope()
        try:
            reads.get(services.auth.authenticate_token(token), target)
        finally:
            services.db.close_scope(scope)

    calls = {
        name: get if query is None else (lambda q=query: reads.list(actor, q))
        for name, query in CASES.items()
    }
    print(json.dumps({"ready": usermgmt.__file__}), flush=True)
    for line in sys.stdin:
        ask = json.loads(line)
        call, times = calls[ask["case"]], []
        for _ in range(ask["n"]):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps(times), flush=True)
    services.close()


# ---- the driver ---------------------------------------------------------------------


class Worker:
    def __init__(self, checkout: Path, url: str) -> None:
        python = checkout / ".venv" / "bin" / "python"
        self.proc = subprocess.Popen(
            [str(python), str(Path(__file__).resolve()), "--worker", url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=checkout,
        )
        ready = json.loads(self.proc.stdout.readline())["ready"]
        print(f"  {checkout}: usermgmt from {ready}", flush=True)

    def run(self, case: str, n: int) -> list[float]:
        self.proc.stdin.write(json.dumps({"case": case, "n": n}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def compare(label: str, url: str, args) -> list[tuple]:
    a, b = Worker(args.a, url), Worker(args.b, url)
    out = []
    try:
        for case in CASES:
            if args.only and not any(o in case for o in args.only):
                continue
            for side in (a, b):
                side.run(case, 2)  # warm-up
            times = {id(a): [], id(b): []}
            diffs = []
            for _ in range(args.rounds):
                order = [a, b]
                random.shuffle(order)
                got = {id(w): statistics.median(w.run(case, args.batch)) for w in order}
                for key, value in got.items():
                    times[key].append(value)
                diffs.append(got[id(b)] - got[id(a)])
            row = (
                label,
                case,
                statistics.median(times[id(a)]),
                statistics.median(times[id(b)]),
                statistics.median(diffs),
            )
            out.append(row)
            print(f"  {label:<18} {case:<36} {row[2]:8.3f} {row[3]:8.3f} {row[4]:+8.3f}")
    finally:
        a.close()
        b.close()
    return out


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
        return
    sys.path.insert(0, str(HERE))
    import seed

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--a", type=Path, required=True, help="the checkout measured first (before)")
    ap.add_argument("--b", type=Path, required=True, help="the other checkout (after)")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=40, help="turns of each checkout per case")
    ap.add_argument("--batch", type=int, default=5, help="calls per turn (a turn's median counts)")
    ap.add_argument("--sqlite-url", help="an SQLite database to use (seeded if short of users)")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--only", action="append", help="cases whose name contains this")
    args = ap.parse_args()
    args.a, args.b = args.a.resolve(), args.b.resolve()
    results = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.sqlite_url or f"sqlite:///{tmp}/bench.db"
            seed.migrated(url)
            if seed.user_count(url) < args.users:
                seed.seed_sqlite(url, args.users)
            results += compare(f"SQLite {args.users:,}", url, args)
    if not args.skip_pg:
        with seed.postgres_database() as url:
            seed.migrated(url)
            if seed.user_count(url) < args.users:
                seed.seed_postgres(url, args.users)
            results += compare(f"PostgreSQL {args.users:,}", url, args)
    print()
    print("| database | case | a (ms) | b (ms) | b - a (paired median) |")
    print("|---|---|---|---|---|")
    for label, case, on_a, on_b, diff in results:
        share = f"{diff / on_a:+.0%}"
        print(f"| {label} | {case} | {on_a:.3f} | {on_b:.3f} | {diff:+.3f} ms ({share}) |")


if __name__ == "__main__":
    main()
