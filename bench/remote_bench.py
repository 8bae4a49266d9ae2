"""Cold `usermgmt users list --limit 20`: remote (through a served API) vs embedded.

    .venv/bin/python bench/remote_bench.py                 # 10,000 users, 7 runs each
    .venv/bin/python bench/remote_bench.py --users 100000 --runs 11

Seeds a temporary SQLite database, starts `usermgmt serve` on loopback over it,
logs in as an admin into a temporary contexts file, then alternates real
`python -m usermgmt` processes: remote (the current context) and embedded
(`--database-url`, the same database). Prints the median wall and CPU time of
each process and its peak RSS, next to the issue's target (remote < 300 ms and
below embedded). Then it streams `users export -o jsonl` of every user over the
API (target < 15 s for 100,000) and prints the client's peak RSS and the
server's resident memory before and at its peak during the export (flat memory
on both ends: neither grows with the number of users). It prints figures and
never fails; the load average is printed since wall time grows on a loaded
machine while CPU time stays put.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
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


def cli_env(tmp: str) -> dict[str, str]:
    """This environment without USERMGMT_ settings, config and data under ``tmp``."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("USERMGMT_")},
        "XDG_CONFIG_HOME": f"{tmp}/config",
        "USERMGMT_DATA_DIR": f"{tmp}/data",
    }


def create_admin(url: str, env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "usermgmt", "--database-url", url, "users", "create",
         "--email", "bench-admin@example.com", "--role", "admin", "--password-stdin", "-q"],
        input=PASSWORD + "\n", text=True, env=env, check=True, capture_output=True,
    )  # fmt: skip


@contextlib.contextmanager
def logged_in_server(url: str, env: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`usermgmt serve` on ``url``, with the bench admin logged in to it in ``env``'s
    contexts file (the current context); stopped on leaving."""
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
        yield server
    finally:
        server.terminate()
        server.wait(timeout=60)


def server_memory(pid: int) -> dict[str, float]:
    """The server's current and peak resident memory (MB), from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def reset_peak(pid: int) -> None:
    """Start the server's peak (VmHWM) afresh from its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def server_cpu(pid: int) -> float:
    """The server's CPU time so far (user + system), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--seed":
        migrated(sys.argv[2])
        seed_sqlite(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    opts = parser.parse_args()
    # An installed package has its bytecode compiled; make sure ours has too (with
    # PYTHONDONTWRITEBYTECODE set, every start would compile usermgmt afresh).
    compileall.compile_dir(str(ROOT / "usermgmt"), quiet=1)

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        # In a child, so this process stays small: a child's peak RSS counts the
        # memory of the parent it was forked from.
        subprocess.run([sys.executable, __file__, "--seed", url, str(opts.users)], check=True)
        env = cli_env(tmp)
        create_admin(url, env)
        with logged_in_server(url, env) as server:
            command = ["users", "list", "--limit", "20"]
            remote, embedded = [], []
            run_once(command, env)  # warm the server's first request and the page cache
            for _ in range(opts.runs):
                remote.append(run_once(command, env))
                embedded.append(run_once(["--database-url", url, *command], env))
            reset_peak(server.pid)
            server_before = server_memory(server.pid)["VmRSS"]
            out_file = f"{tmp}/export.jsonl"
            cpu_before = server_cpu(server.pid)
            export = run_once(["users", "export", "-o", "jsonl"], env, out_file)
            server_export_cpu = server_cpu(server.pid) - cpu_before
            server_peak = server_memory(server.pid)["VmHWM"]
            with open(out_file, "rb") as exported_file:
                exported = sum(1 for _ in exported_file)

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
    listing_rss = max(s.rss_mb for s in remote)
    print(
        f"remote users export -o jsonl: {exported:,} users in {export.wall:.1f} s "
        f"(cpu: client {export.cpu:.1f} s, server {server_export_cpu:.1f} s; "
        f"target < 15 s for 100,000: "
        f"{'met' if export.wall < 15 * max(exported, 1) / 100_000 else 'missed'})"
    )
    print(f"  client peak RSS {export.rss_mb:.1f} MB (a 20-user listing: {listing_rss:.1f} MB); "
          f"server RSS {server_before:.1f} MB before, peak {server_peak:.1f} MB during "
          f"({server_peak - server_before:+.1f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
