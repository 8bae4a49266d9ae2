"""Each speed device of the read path, on and off, over the same database.

    .venv/bin/python bench/devices_bench.py --pg-users 100000 --sqlite-users 100000

Seeds N users into SQLite and PostgreSQL (bench/seed.py), then for each device
builds two sets of services over the same database, one with the device and one
without (usermgmt.core.reads.tuning.Tuning, or the Database's options), and
times the operations the device is meant to speed up, in-process. The two run
in pairs, one call each in random order, so the machine's drift (other
processes, the CPU's clock) hits both alike. Prints, per operation, the median
time (ms) with and without the device and the median of the pairs'
differences: what the device saves. Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed

from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.db import Database
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.services import Services
from usermgmt.core.services.base import KeyRing

PASSWORD = "Bench-Devices-42!"
RARE = "4242@"  # ten users in 100,000 (ids ending in 4242)
ONE = "424242@"  # one user in 1,000,000, none in 100,000
COMMON = "smith"  # smith and goldsmith: about 2% of the users
# Terms of one or two characters, by their matches among 100,000 seeded users.
SHORT = {"zq": 0, "ky": 7, "bs": 60, "sl": 295, "dm": 537, "ye": 2973, "na": 7987, "a": 100_000}
SHORT_TERMS = tuple(f"{term} ({matches:,})" for term, matches in SHORT.items())


@dataclass
class Device:
    name: str
    without: dict  # Tuning fields, or Database options under "db"
    operations: tuple[str, ...]
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    with_: dict = field(default_factory=dict)


DEVICES = [
    Device("precompiled plans", {"db": {"precompiled": False}}, ("get", "first page", "rare")),
    Device(
        "idle ping",
        {"db": {"ping_after_idle_s": 0.0}},
        ("get",),
        backends=("postgresql",),
    ),
    Device("id buckets", {"id_buckets": ()}, ("first page", "rare")),
    Device("constant unfiltered pages", {"constant_pages": False}, ("first page", "page 50")),
    Device("trigram gather", {"index_gather_limit": 0}, ("one", "rare", "lovelace", "common")),
    Device("short-term gather", {"gather_limit": 0}, SHORT_TERMS),
    Device("rare-match scan", {"walk_limit": 10**12}, ("ky, deleted too", "rare, role")),
    Device("short-term gather limit 5,000 (not 1,000)", {"gather_limit": 1_000}, SHORT_TERMS),
    Device(
        "counting halves alongside",
        {"count_threads": 0},
        ("common", "lovelace"),
        backends=("postgresql",),
    ),
]


def services_for(url: str, tuning: Tuning, db_options: dict) -> Services:
    settings = load_settings(database_url=url, bcrypt_rounds=4)
    db = Database(url, **db_options)
    return Services(settings=settings, db=db, keys=KeyRing(db, settings), tuning=tuning)


def operations(svc: Services, token: str, target: str) -> dict[str, Callable[[], object]]:
    actor = Actor.operator("bench")
    reads = svc.user_reads

    def get() -> object:
        """What GET /users/{id} does in the core: the token check and the read, one scope."""
        scope = svc.db.open_scope()
        try:
            return reads.get(svc.auth.authenticate_token(token), target)
        finally:
            svc.db.close_scope(scope)

    def listing(**query) -> Callable[[], object]:
        return lambda: reads.list(actor, {"limit": 20, **query})

    return {
        "get": get,
        "first page": listing(),
        "page 50": listing(page=50),
        "rare": listing(search=RARE),
        "one": listing(search=ONE),
        "common": listing(search=COMMON),
        "lovelace": listing(search="lovelace"),
        "ky, deleted too": listing(search="ky", include_deleted=True),
        "rare, role": listing(search=RARE, role="user"),
        **{name: listing(search=term) for name, term in zip(SHORT_TERMS, SHORT, strict=True)},
    }


def paired_ms(with_: Callable[[], object], without: Callable[[], object], pairs: int):
    """Medians (ms) of ``with_`` and ``without``, run in pairs, in random order per pair,
    and the median of the pairs' differences (without minus with)."""
    with_(), without()  # warm-up
    on, off, saved = [], [], []
    for _ in range(pairs):
        order = [(on, with_), (off, without)]
        random.shuffle(order)
        taken = {}
        for samples, fn in order:
            t0 = time.perf_counter()
            fn()
            taken[id(samples)] = (time.perf_counter() - t0) * 1000
            samples.append(taken[id(samples)])
        saved.append(taken[id(off)] - taken[id(on)])
    return statistics.median(on), statistics.median(off), statistics.median(saved)


def login_token(url: str) -> tuple[str, str]:
    """An admin's access token and the id of a user to read."""
    svc = services_for(url, Tuning(), {})
    try:
        ctx = RequestContext(ip="127.0.0.1")
        operator = Actor.operator("cli", "bench")
        svc.users.ensure(
            operator,
            ctx,
            {"email": "devices-admin@example.com", "password": PASSWORD, "roles": ["admin"]},
        )
        login = svc.auth.login(ctx, {"email": "devices-admin@example.com", "password": PASSWORD})
        target = svc.user_reads.list(operator, {"limit": 1, "page": 1000}).data[0].id
        return login.tokens.access_token, str(target)
    finally:
        svc.close()


def measure(label: str, url: str, backend: str, args) -> list[tuple]:
    token, target = login_token(url)
    out = []
    for device in DEVICES:
        if backend not in device.backends:
            continue
        if args.only and not any(o in device.name for o in args.only):
            continue
        sides = {}
        for side, options in (("with", device.with_), ("without", device.without)):
            db_options = dict(options.get("db", {}))
            tuning = Tuning(**{k: v for k, v in options.items() if k != "db"})
            svc = services_for(url, tuning, db_options)
            sides[side] = (svc, operations(svc, token, target))
        for name in device.operations:
            with_, without = sides["with"][1][name], sides["without"][1][name]
            on, off, saved = paired_ms(with_, without, args.pairs)
            out.append((label, device.name, name, on, off, saved))
            print(f"  {label:<18} {device.name:<28} {name:<14} {on:8.3f} {off:8.3f} {saved:+8.3f}")
        for svc, _ops in sides.values():
            svc.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pg-users", type=int, default=100_000)
    ap.add_argument("--sqlite-users", type=int, default=100_000)
    ap.add_argument("--pairs", type=int, default=200, help="runs of each side per operation")
    ap.add_argument("--sqlite-url", help="an SQLite database to use (seeded if short of users)")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--skip-sqlite", action="store_true")
    ap.add_argument("--only", action="append", help="devices whose name contains this")
    args = ap.parse_args()
    results = []
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.sqlite_url or f"sqlite:///{tmp}/bench.db"
            seed.migrated(url)
            if seed.user_count(url) < args.sqlite_users:
                seed.seed_sqlite(url, args.sqlite_users)
            results += measure(f"SQLite {args.sqlite_users:,}", url, "sqlite", args)
    if not args.skip_pg:
        with seed.postgres_database() as url:
            seed.migrated(url)
            if seed.user_count(url) < args.pg_users:  # USERMGMT_BENCH_POSTGRES_URL may be seeded
                seed.seed_postgres(url, args.pg_users)
            results += measure(f"PostgreSQL {args.pg_users:,}", url, "postgresql", args)
    print()
    print("| database | device | operation | with (ms) | without (ms) | saves (paired median) |")
    print("|---|---|---|---|---|---|")
    for label, device, name, on, off, saved in results:
        share = f" ({saved / off:+.0%})" if off else ""
        print(f"| {label} | {device} | {name} | {on:.3f} | {off:.3f} | {saved:+.3f} ms{share} |")


if __name__ == "__main__":
    main()
