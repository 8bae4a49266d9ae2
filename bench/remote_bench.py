"""Cold `usermgmt users list --limit 20`: remote (through a served API) vs embedded.

    .venv/bin/python bench/remote_bench.py                 # 10,000 users, 7 runs each
    .venv/bin/python bench/remote_bench.py --users 100000 --runs 11

Seeds a temporary SQLite database, starts `usermgmt serve` on loopback over it,
logs in as an admin into a temporary contexts file, then alternates real
`python -m usermgmt` processes: remote (the current context) and embedded
(`--database-url`, the same database). Prints the median wall and CPU time of
each process and its peak RSS, next to the issue's target (remote < 300 ms and
below embedded). It prints figures and never fails; the load average is
printed since wall time grows on a loaded machine while CPU time stays put.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cli_bench import run_once  # noqa: E402
from seed import migrated, seed_sqlite  # noqa: E402

PASSWORD = "Bench-Admin-Passw0rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health/live", timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not start")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        migrated(url)
        seed_sqlite(url, opts.users)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("USERMGMT_")},
            "XDG_CONFIG_HOME": f"{tmp}/config",
            "USERMGMT_DATA_DIR": f"{tmp}/data",
        }
        subprocess.run(
            [sys.executable, "-m", "usermgmt", "--database-url", url, "users", "create",
             "--email", "bench-admin@example.com", "--role", "admin", "--password-stdin", "-q"],
            input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True,
        )  # fmt: skip
        port = free_port()
        server_url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "usermgmt", "--database-url", url, "serve", "--port", str(port)],
            env={**env, "USERMGMT_RATE_LIMIT_LOGIN": "off"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_ready(server_url)
            subprocess.run(
                [sys.executable, "-m", "usermgmt", "login", "--server", server_url,
                 "--email", "bench-admin@example.com", "--password-stdin"],
                input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True,
            )  # fmt: skip
            command = ["users", "list", "--limit", "20"]
            remote, embedded = [], []
            run_once(command, env)  # warm the server's first request and the page cache
            for _ in range(opts.runs):
                remote.append(run_once(command, env))
                embedded.append(run_once(["--database-url", url, *command], env))
        finally:
            server.terminate()
            server.wait(timeout=60)

    print(f"users: {opts.users:,}  runs: {opts.runs}  load average: {os.getloadavg()[0]:.2f}")
    print(f"{'mode':<10}{'wall ms':>10}{'cpu ms':>10}{'peak MB':>10}")
    for name, samples in (("remote", remote), ("embedded", embedded)):
        wall = median([s.wall for s in samples]) * 1000
        cpu = median([s.cpu for s in samples]) * 1000
        rss = max(s.rss_mb for s in samples)
        print(f"{name:<10}{wall:>10.0f}{cpu:>10.0f}{rss:>10.1f}")
    r = median([s.wall for s in remote]) * 1000
    e = median([s.wall for s in embedded]) * 1000
    print(f"target: remote < 300 ms ({'met' if r < 300 else 'missed'}), below embedded "
          f"({'met' if r < e else 'missed'}: {r:.0f} vs {e:.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
