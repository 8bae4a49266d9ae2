"""API throughput against a bare Falcon app on the same waitress settings, in one run.

    .venv/bin/python bench/api_bench.py [--users N] [--duration S] [--backends sqlite,postgres]

For each database (SQLite file; PostgreSQL in a throwaway cluster from
tests/pgserver.py, or USERMGMT_BENCH_POSTGRES_URL), seeds N users with bulk
inserts (one bcrypt hash shared by every row), starts the real server
(``python -m usermgmt.api.server``, what ``usermgmt serve`` runs) and drives
it with wrk (Debian package ``wrk``) at 16 connections from a separate
process. A bare Falcon app returning a constant JSON body is served by
waitress with the same thread count and measured the same way. Prints
requests/s, p50 and p99 for each, and the ratios against the targets:

  GET /api/v1/users/{id} (authenticated)  >= 40% of bare, p99 < 30 ms, 0 errors
  the same GET with an API key            >= 90% of the token-authenticated GET
  GET /api/v1/users?search=...            >= 25% of bare
  POST /api/v1/auth/login                 >= 80% of raw bcrypt.checkpw on all cores

Figures only: nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
PASSWORD = "Bench-Passw0rd-42"
API = "/api/v1"


# ---- the bare app ------------------------------------------------------------------


def bare_app():
    import falcon

    class Constant:
        body = json.dumps({"status": "ok", "hello": "world"}).encode()

        def on_get(self, req, resp):
            resp.content_type = falcon.MEDIA_JSON
            resp.data = self.body

    app = falcon.App()
    app.add_route("/", Constant())
    return app


def serve_bare(port: int, threads: int, workers: int) -> None:
    """The bare app on waitress; with workers > 1, that many forked processes on one
    port, set up as ``usermgmt serve --workers`` sets up its own."""
    import logging

    from waitress import serve

    from usermgmt.api.listen import bind_sockets, own_listeners
    from usermgmt.api.workers import BALANCED

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    if workers == 1:
        serve(bare_app(), host="127.0.0.1", port=port, threads=threads, ident="bare")
        return
    sockets = bind_sockets("127.0.0.1", port, listen=not BALANCED, reuse_port=BALANCED)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            listeners = own_listeners(sockets) if BALANCED else sockets
            serve(bare_app(), sockets=listeners, threads=threads, ident="bare")
            os._exit(0)
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(c, signal.SIGTERM) for c in children])
    for child in children:
        while True:
            try:
                os.waitpid(child, 0)
                break
            except InterruptedError:
                continue


# ---- seeding --------------------------------------------------------------------


def seed(database_url: str, users: int, rounds: int) -> dict:
    """Schema, an admin (through the core) and ``users`` more rows by bulk insert."""
    import bcrypt
    from sqlalchemy import insert

    from usermgmt.core.config import load_settings
    from usermgmt.core.context import Actor, RequestContext
    from usermgmt.core.models import Profile, User, UserRole, build_search_text
    from usermgmt.core.services import build_services

    services = build_services(load_settings(database_url=database_url, bcrypt_rounds=rounds))
    admin = services.users.create(
        Actor.operator("cli", "bench"),
        RequestContext(),
        {"email": "bench-admin@example.com", "password": PASSWORD, "roles": ["admin"]},
    )
    shared_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds)).decode()
    first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Ken", "Margaret"]
    last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Thompson"]
    now = services.clock.now()
    started = time.perf_counter()
    batch = 2000  # 2,000 rows x 10 columns stays under SQLite's 32,766 parameters
    target_id = None
    with services.db.write() as s:
        for start in range(0, users, batch):
            rows, profiles, roles = [], [], []
            for i in range(start, min(start + batch, users)):
                uid = services.ids.new_uuid()
                target_id = target_id or uid
                email = f"user{i:06d}@example.com"
                username = f"user{i:06d}"
                fn, ln = first[i % len(first)], last[i % len(last)]
                rows.append(
                    {
                        "id": uid,
                        "email": email,
                        "username": username,
                        "password_hash": shared_hash,
                        "first_name": fn,
                        "last_name": ln,
                        "is_active": True,
                        "created_at": now,
                        "updated_at": now,
                        "search_text": build_search_text(email, username, fn, ln),
                    }
                )
                profiles.append({"user_id": uid, "timezone": "UTC", "locale": "en"})
                roles.append(
                    {"user_id": uid, "role_name": "user", "granted_by": "bench", "granted_at": now}
                )
            # Multi-row VALUES, one statement per batch: statement-level triggers
            # (the user counts) fire once per batch, not once per row.
            s.execute(insert(User).values(rows))
            s.execute(insert(Profile).values(profiles))
            s.execute(insert(UserRole).values(roles))
    seconds = time.perf_counter() - started
    if services.db.is_postgres:
        from sqlalchemy import text

        # VACUUM too: the bulk insert left the trigram GIN indexes' pending lists
        # full, and every search scans them until autovacuum merges them (about
        # half a minute later, in the middle of the runs): a steady-state server
        # is what the figures are about.
        with services.db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
    else:
        from sqlalchemy import text

        with services.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
    login = services.auth.login(
        RequestContext(ip="127.0.0.1"), {"email": "bench-admin@example.com", "password": PASSWORD}
    )
    key = services.api_keys.create(
        Actor.operator("cli", "bench"),
        RequestContext(),
        {"name": "bench", "scopes": ["users:read"], "user_id": str(admin.id)},
    )
    services.close()
    print(f"  seeded {users:,} users in {seconds:.1f}s", flush=True)
    return {
        "admin_token": login.tokens.access_token,
        "admin_key": key.secret,
        "admin_id": str(admin.id),
        "target_id": str(target_id),
    }


# ---- processes and wrk ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_up(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"server at {url} did not come up")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


WRK_RE = {
    "rps": re.compile(r"Requests/sec:\s+([\d.]+)"),
    "p50": re.compile(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", re.M),
    "p99": re.compile(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", re.M),
    "non2xx": re.compile(r"Non-2xx or 3xx responses:\s+(\d+)"),
    "sock": re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"),
    "total": re.compile(r"(\d+) requests in"),
}
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) and its live children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(cpu_seconds(int(child)) for child in children)


def wrk(url: str, args, *, headers=(), script: str | None = None, duration=None, pid=None) -> dict:
    cpu_before = cpu_seconds(pid) if pid else 0.0
    cmd = ["wrk", "-t", "2", "-c", str(args.connections), "-d", f"{duration or args.duration}s"]
    cmd += ["--latency", "--timeout", "10s"]
    for header in headers:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    result = {"rps": float(WRK_RE["rps"].search(out).group(1))}
    for key in ("p50", "p99"):
        match = WRK_RE[key].search(out)
        result[key] = float(match.group(1)) * UNIT_MS[match.group(2)] if match else float("nan")
    errors = 0
    if match := WRK_RE["non2xx"].search(out):
        errors += int(match.group(1))
    if match := WRK_RE["sock"].search(out):
        errors += sum(int(x) for x in match.groups())
    result["errors"] = errors
    result["requests"] = int(WRK_RE["total"].search(out).group(1))
    if pid:
        used = cpu_seconds(pid) - cpu_before
        result["cpu_ms"] = used * 1000 / max(1, result["requests"])
    else:
        result["cpu_ms"] = float("nan")
    return result


def raw_bcrypt_rate(rounds: int, seconds: float = 5.0) -> float:
    """checkpw per second with one thread per core (bcrypt releases the GIL)."""
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds))
    cores = os.cpu_count() or 1
    stop_at = time.perf_counter() + seconds
    counts = [0] * cores

    def work(i: int) -> None:
        while time.perf_counter() < stop_at:
            bcrypt.checkpw(PASSWORD.encode(), hashed)
            counts[i] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(work, range(cores)))
    return sum(counts) / (time.perf_counter() - started)


# ---- one backend ------------------------------------------------------------------------


def run_backend(name: str, database_url: str, args, bare: dict, workdir: Path) -> list[tuple]:
    print(f"\n[{name}] seeding", flush=True)
    seeded = seed(database_url, args.users, args.bcrypt_rounds)
    port = free_port()
    env = {
        **os.environ,
        "USERMGMT_DATABASE_URL": database_url,
        "USERMGMT_RATE_LIMIT_LOGIN": "off",
        "USERMGMT_RATE_LIMIT_AUTH": "off",
        "USERMGMT_BCRYPT_ROUNDS": str(args.bcrypt_rounds),
        "USERMGMT_LOG_LEVEL": "INFO",
        "USERMGMT_DATA_DIR": str(workdir / "data"),
    }
    log = open(workdir / f"server-{name}.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usermgmt.api.server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(args.threads),
            "--workers",
            str(args.workers),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        wait_up(base + "/health/live", server)
        auth = f"Authorization: Bearer {seeded['admin_token']}"
        target = f"{base}{API}/users/{seeded['target_id']}"
        by_key = f"Authorization: Bearer {seeded['admin_key']}"
        wrk(target, args, headers=[auth], duration=2)  # warm-up
        wrk(target, args, headers=[by_key], duration=2)
        get = wrk(target, args, headers=[auth], pid=server.pid)
        key_get = wrk(target, args, headers=[by_key], pid=server.pid)
        search = wrk(
            f"{base}{API}/users?search={args.search}&limit=20",
            args,
            headers=[auth],
            pid=server.pid,
        )
        script = workdir / "login.lua"
        body = json.dumps({"email": "user000001@example.com", "password": PASSWORD})
        script.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {json.dumps(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
        # Raw bcrypt right before the login run: the machine's load drifts.
        raw = raw_bcrypt_rate(args.bcrypt_rounds)
        login = wrk(f"{base}{API}/auth/login", args, script=str(script), pid=server.pid)
        raw = (raw + raw_bcrypt_rate(args.bcrypt_rounds)) / 2
        raw_row = {"rps": raw, "p50": float("nan"), "p99": float("nan"), "errors": 0}
        raw_row["cpu_ms"] = float("nan")
        rows.append((name, "GET /users/{id} (auth)", get, get["rps"] / bare["rps"], 0.40))
        rows.append((name, "GET /users/{id} (key)", key_get, key_get["rps"] / get["rps"], 0.90))
        rows.append((name, "GET /users?search=", search, search["rps"] / bare["rps"], 0.25))
        rows.append((name, "raw bcrypt.checkpw", raw_row, None, None))
        rows.append((name, "POST /auth/login", login, login["rps"] / raw, 0.80))
    finally:
        stop(server)
        log.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="waitress threads per process (both servers); default: what usermgmt serve uses",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="server processes (both servers, usermgmt serve --workers); default: one per core",
    )
    parser.add_argument("--bcrypt-rounds", type=int, default=10)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--search", default="user04242", help="term for the search run")
    parser.add_argument("--bare-server", nargs=3, type=int, metavar=("PORT", "THREADS", "WORKERS"))
    args = parser.parse_args()
    if args.threads is None:
        from usermgmt.api.server import default_threads

        args.threads = default_threads()
    if args.bare_server:
        serve_bare(*args.bare_server)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="usermgmt-bench-"))
    print(
        f"cores: {os.cpu_count()}, server processes: {args.workers}, "
        f"waitress threads per process: {args.threads}, "
        f"connections: {args.connections}, {args.duration}s per run, users: {args.users:,}"
    )
    port = free_port()
    bare_proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--bare-server",
            str(port),
            str(args.threads),
            str(args.workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_up(f"http://127.0.0.1:{port}/", bare_proc)
        wrk(f"http://127.0.0.1:{port}/", args, duration=2)
        bare = wrk(f"http://127.0.0.1:{port}/", args, pid=bare_proc.pid)
    finally:
        stop(bare_proc)
    print(f"bare Falcon app: {bare['rps']:.0f} req/s", flush=True)

    rows: list[tuple] = []
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    cluster = None
    try:
        for backend in backends:
            if backend == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
            else:
                import pgserver

                admin = os.environ.get("USERMGMT_BENCH_POSTGRES_URL")
                if not admin:
                    cluster = pgserver.PostgresCluster().start()
                    admin = cluster.admin_url
                name = f"bench_{uuid.uuid4().hex[:8]}"
                pgserver.create_database(admin, name)
                url = pgserver.url_for(admin, name)
            rows += run_backend(backend, url, args, bare, workdir)
    finally:
        if cluster is not None:
            cluster.stop()

    print()
    header = f"{'backend':9} {'endpoint':24} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
    header += f"{'errors':>7} {'cpu ms/req':>10} {'ratio':>7} {'target':>7}"
    print(header)
    print("-" * len(header))
    rows.insert(0, ("-", "bare Falcon app", bare, None, None))
    for backend, label, r, ratio, target in rows:
        shown_ratio = f"{ratio:6.0%}" if ratio is not None else ""
        shown_target = ">=" + format(target, ".0%") if target is not None else ""
        print(
            f"{backend:9} {label:24} {r['rps']:9.1f} {r['p50']:8.2f} {r['p99']:8.2f} "
            f"{r['errors']:7d} {r['cpu_ms']:10.3f} {shown_ratio:>7} {shown_target:>7}"
        )
    print(
        "\nratios: API endpoints against the bare app's req/s, except the API-key GET "
        "(against the token GET); login against raw bcrypt.checkpw on all cores, "
        "measured around the login run.\n"
        "cpu ms/req: the server process's CPU time per request (less sensitive to "
        "other load on the machine than req/s)."
    )
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
