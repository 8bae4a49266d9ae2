"""Benchmark of the admin CLI: start-up, listing, export and import on 100,000 users.

    .venv/bin/python bench/cli_bench.py            # 100,000 users (a few minutes)
    .venv/bin/python bench/cli_bench.py --users 20000 --runs 5

Every figure is a real `python -m usermgmt …` process on a temporary SQLite
database, so it includes interpreter start-up and imports, as a user sees it.
For each command the bench prints the wall time (median of the runs), the CPU
time of that process and its peak RSS (os.wait4), next to the target from the
CLI issue. It prints figures and never fails: on a loaded machine the wall time
grows while the CPU time stays put, so the load average is printed too.

Seeding goes through the core's bulk import in-process with one bcrypt hash
computed once (no bcrypt per row). The import benchmark then imports a CSV of
100,000 rows carrying bcrypt hashes into a fresh database through the CLI.
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass
class Sample:
    wall: float
    cpu: float
    rss_mb: float
    code: int


def run_once(args: list[str], env: dict[str, str], stdout_path: str | None = None) -> Sample:
    """One `python -m usermgmt` process: wall time, its own CPU time and peak RSS."""
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL  # noqa: SIM115
    with tempfile.TemporaryFile() as errors:
        try:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "usermgmt", *args], stdout=out, stderr=errors, env=env
            )
            _pid, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            if stdout_path:
                out.close()
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"usermgmt {' '.join(args)} failed ({proc.returncode}): {err[-2000:]}")
    return Sample(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc.returncode)


def measure(args: list[str], env: dict[str, str], runs: int, stdout_path: str | None = None):
    samples = [run_once(args, env, stdout_path) for _ in range(runs)]
    return (
        statistics.median(s.wall for s in samples),
        statistics.median(s.cpu for s in samples),
        max(s.rss_mb for s in samples),
    )


def seed(url: str, n: int, password_hash: str) -> float:
    """Bulk-import n users through the core, in a child process so this one stays small
    (a child's peak RSS counts the parent's memory it was forked from); returns seconds."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--seed", url, str(n), password_hash], check=True)
    return time.perf_counter() - start


def seed_here(url: str, n: int, password_hash: str) -> None:
    from usermgmt.core.config import load_settings
    from usermgmt.core.context import Actor, RequestContext
    from usermgmt.core.services import build_services

    services = build_services(load_settings(database_url=url))
    rows = (
        (
            i + 2,
            {
                "email": f"user{i}@example.com",
                "username": f"user{i:06d}",
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "password_hash": password_hash,
            },
        )
        for i in range(n)
    )
    report = services.transfer.import_users(Actor.operator("bench"), RequestContext(), rows)
    services.close()
    if report.errors or not report.committed:
        raise SystemExit(f"seeding failed: {report.errors[:3]}")


def write_import_csv(path: Path, n: int, password_hash: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write("email,username,first_name,last_name,roles,password_hash\n")
        for i in range(n):
            f.write(f"imp{i}@example.com,imp{i:06d},First{i},Last{i},user,{password_hash}\n")


def main() -> int:
    if sys.argv[1:2] == ["--seed"]:
        url, n, password_hash = sys.argv[2:5]
        seed_here(url, int(n), password_hash)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="users to seed and import")
    parser.add_argument("--runs", type=int, default=10, help="runs of the short commands")
    args = parser.parse_args()
    n = args.users

    import bcrypt

    # An installed package has its bytecode compiled; make sure ours has too.
    compileall.compile_dir(str(ROOT / "usermgmt"), quiet=1)
    password_hash = bcrypt.hashpw(b"Bench-Passw0rd", bcrypt.gensalt(10)).decode()
    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory(prefix="usermgmt-bench-") as tmp:
        tmpdir = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("USERMGMT_")}
        env["USERMGMT_DATA_DIR"] = str(tmpdir / "data")
        env.pop("PYTHONDONTWRITEBYTECODE", None)

        big = f"sqlite:///{tmpdir / 'big.db'}"
        small = f"sqlite:///{tmpdir / 'small.db'}"
        print(f"seeding {n:,} users (core bulk import, one precomputed bcrypt hash) …", flush=True)
        seed_seconds = seed(big, n, password_hash)
        seed(small, max(n // 10, 1), password_hash)
        csv_path = tmpdir / "import.csv"
        write_import_csv(csv_path, n, password_hash)

        rows: list[tuple[str, float, float, float, str, float | None]] = []

        def add(name, result, target_label, target_s):
            wall, cpu, rss = result
            rows.append((name, wall, cpu, rss, target_label, target_s))
            print(f"  {name}: {wall * 1000:,.0f} ms wall, {cpu * 1000:,.0f} ms CPU", flush=True)

        print("measuring …", flush=True)
        add("usermgmt --help (median)", measure(["--help"], env, args.runs), "< 250 ms", 0.25)
        add(
            "usermgmt users --help (median)", measure(["users", "--help"], env, args.runs), "", None
        )
        add(
            "users show X (median)",
            measure(["--database-url", big, "users", "show", "user5@example.com"], env, args.runs),
            "",
            None,
        )
        add(
            f"users list -o json --limit 20, {n:,} users (median)",
            measure(
                ["--database-url", big, "users", "list", "-o", "json", "--limit", "20"],
                env,
                args.runs,
            ),
            "< 500 ms",
            0.5,
        )
        out_file = str(tmpdir / "export.jsonl")
        add(
            f"users export -o jsonl, {n // 10:,} users",
            measure(["--database-url", small, "users", "export", "-o", "jsonl"], env, 1, out_file),
            "",
            None,
        )
        add(
            f"users export -o jsonl, {n:,} users",
            measure(["--database-url", big, "users", "export", "-o", "jsonl"], env, 1, out_file),
            "< 15 s, flat memory",
            15.0,
        )
        with open(out_file, "rb") as exported_file:
            exported = sum(1 for _ in exported_file)
        fresh = f"sqlite:///{tmpdir / 'fresh.db'}"
        add(
            f"users import of {n:,} rows with bcrypt hashes",
            measure(["--database-url", fresh, "users", "import", str(csv_path)], env, 1),
            "< 30 s",
            30.0,
        )

    load_after = os.getloadavg()
    print()
    print(
        f"usermgmt CLI benchmark: {n:,} users on SQLite, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
        "(wall times grow with load; CPU times do not)"
    )
    print(
        f"seeding {n:,} users in-process took {seed_seconds:.1f} s; "
        f"the export wrote {exported:,} lines"
    )
    print()
    header = (
        f"{'measurement':<52} {'wall':>10} {'CPU':>10} {'peak RSS':>10}  {'target':<20} verdict"
    )
    print(header)
    print("-" * len(header))
    for name, wall, cpu, rss, label, target in rows:
        verdict = ""
        if target is not None:
            verdict = (
                "met"
                if wall < target
                else ("met on CPU (machine loaded)" if cpu < target else "MISSED")
            )
        print(f"{name:<52} {fmt(wall):>10} {fmt(cpu):>10} {rss:>8.0f} MB  {label:<20} {verdict}")
    return 0


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 10 else f"{seconds:,.1f} s"


if __name__ == "__main__":
    sys.exit(main())
