"""Benchmark of `usermgmt users list --all -o table` on a seeded SQLite database.

    .venv/bin/python bench/cli_table_bench.py                  # 50,000 users
    .venv/bin/python bench/cli_table_bench.py --users 10000 --runs 3
    .venv/bin/python bench/cli_table_bench.py --code /tmp/other-checkout   # compare code

Each figure is a real `python -m usermgmt` process: wall time (median of the
runs), its CPU time and its peak RSS (os.wait4), with the table written to a
pipe and to a pseudo-terminal of 120 columns (what an operator sees), and
``-o jsonl`` to a pipe as the baseline of reading the users at all. ``--code``
runs the package of another checkout (e.g. the commit before a change) on the
same database. It prints figures and never fails; the load average is printed
because a busy machine stretches the wall time, not the CPU time.
"""

from __future__ import annotations

import argparse
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from seed import migrated, seed_sqlite  # noqa: E402


def drain(fd: int, sink: list[int]) -> None:
    while True:
        try:
            data = os.read(fd, 1 << 16)
        except OSError:
            return
        if not data:
            return
        sink[0] += data.count(b"\n")


def run_once(
    args: list[str], env: dict[str, str], terminal: bool, cwd: str
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MB) of one process; stdout is read and dropped."""
    lines = [0]
    if terminal:
        master, slave = pty.openpty()
        os.set_blocking(master, True)
        stdout = slave
    else:
        master, stdout = os.pipe()
    reader = threading.Thread(target=drain, args=(master, lines), daemon=True)
    reader.start()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "usermgmt", *args],
        stdout=stdout,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=cwd,  # not the checkout: `-m` would import the package found there first
    )
    os.close(stdout)
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    reader.join(timeout=30)
    os.close(master)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"usermgmt {' '.join(args)} exited {code}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--code", metavar="DIR", help="run the usermgmt package found in DIR")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrated(url)
        seed_sqlite(url, options.users)
        env = {**os.environ, "COLUMNS": "120", "LINES": "40"}
        env = {k: v for k, v in env.items() if not k.startswith("USERMGMT_")}
        if options.code:
            env["PYTHONPATH"] = str(Path(options.code).resolve())
        args = ["--database-url", url, "users", "list", "--all", "-o", "table"]
        code = options.code or str(ROOT)
        print(f"users list --all -o table, {options.users:,} users, code: {code}")
        print(f"{'format, stdout':<24}{'wall s':>9}{'cpu s':>9}{'peak RSS MB':>13}")
        cases = [
            ("table, pipe", args, False),
            ("table, terminal 120", args, True),
            ("jsonl, pipe (baseline)", [*args[:-1], "jsonl"], False),
        ]
        for name, argv, terminal in cases:
            samples = [run_once(argv, env, terminal, tmp) for _ in range(options.runs)]
            wall = statistics.median(s[0] for s in samples)
            cpu = statistics.median(s[1] for s in samples)
            rss = max(s[2] for s in samples)
            print(f"{name:<24}{wall:>9.2f}{cpu:>9.2f}{rss:>13.0f}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
