"""The console in remote mode: start to first page and search to rows, through `usermgmt serve`.

    .venv/bin/python bench/tui_remote_bench.py                  # 100,000 users
    .venv/bin/python bench/tui_remote_bench.py --users 20000

Seeds a SQLite database (bench/seed.py, kept in bench/results between runs),
starts `usermgmt serve` on loopback over it, logs in as an admin into a
temporary contexts file, then drives the real console headless through the
remote backend, the way `usermgmt tui` runs it with a current context:

- start -> first page filled: a fresh process (interpreter, imports, the
  contexts file, the client, the console) until the first page of rows is on
  screen; target < 1 s
- typed search -> rows updated, from the moment the debounce fires; target < 300 ms
- jumps, paging down and memory, as bench/tui_bench.py measures them embedded

Figures are printed, never asserted: the machine is shared. The load average
is printed with them.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from remote_bench import cli_env, create_admin, logged_in_server  # noqa: E402
from tui_bench import SIZE, Marks, _users_table, interact, report, until  # noqa: E402


def remote_backend():
    """The backend `usermgmt tui` gets from the current context."""
    from usermgmt.client.factory import choose, connect

    return connect(choose(None, None))


def probe(spawned_at: float) -> None:
    """Run in a child process: spawn to the first page of rows on screen, started as
    `usermgmt tui` starts in remote mode (the backend and `me`, then the first page
    on its way in threads while the console is imported)."""
    t_main = time.time()
    backend = remote_backend()
    backend.me()
    from usermgmt.tui.remote_start import RemoteHeadStart

    start = RemoteHeadStart(backend)
    from usermgmt.tui.app import UserMgmtApp

    t_imported = time.time()
    marks = Marks()
    app = UserMgmtApp(backend, retry_start=False, first_page=start.first_page)

    async def run() -> float:
        async with app.run_test(size=SIZE) as pilot:
            table = await _users_table(pilot)
            await until(pilot, lambda: marks.page_time(table, 0, 0) is not None)
            first = marks.page_time(table, 0, 0)
            return first - time.perf_counter() + time.time()

    t_page = asyncio.run(run())
    usage = resource.getrusage(resource.RUSAGE_SELF)  # just after the first page
    start.close()
    backend.close()
    print(
        json.dumps(
            {
                "total": t_page - spawned_at,
                "interpreter": t_main - spawned_at,
                "imports": t_imported - t_main,
                "app_to_page": t_page - t_imported,
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        )
    )


def cold_start(env: dict[str, str], runs: int = 5) -> list[dict]:
    results = []
    for _ in range(runs):
        spawned = time.time()
        out = subprocess.run(
            [sys.executable, __file__, "--probe", str(spawned)],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        probe(float(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "usermgmt"), quiet=1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    import seed

    path = args.workdir / f"tui-remote-bench-{args.users}.db"
    url = f"sqlite:///{path}"
    fresh = not path.exists()
    t0 = time.perf_counter()
    seed.migrated(url)
    seeded_s = None
    with tempfile.TemporaryDirectory() as tmp:
        env = cli_env(tmp)
        if fresh:
            seed.seed_sqlite(url, args.users)
            seeded_s = time.perf_counter() - t0
            create_admin(url, env)
        with logged_in_server(url, env):
            cold = cold_start(env)
            os.environ.update(env)  # this process drives the console through the same context
            for name in [k for k in os.environ if k.startswith("USERMGMT_")]:
                if name not in env:
                    del os.environ[name]
            backend = remote_backend()
            try:
                figures = asyncio.run(interact(backend))
            finally:
                backend.close()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    cpus = sorted(r["cpu"] for r in cold)
    print(
        f"start -> first page, CPU time of the process: {cpus[0] * 1000:.0f} ms best, "
        f"{cpus[len(cpus) // 2] * 1000:.0f} ms median (wall time grows with the load)"
    )
    report(f"remote (usermgmt serve on {url.split('/')[-1]})", figures["rows"], seeded_s, cold,
           figures)  # fmt: skip


if __name__ == "__main__":
    main()
