"""How much of the bare app's throughput a handler costing W microseconds can keep.

    .venv/bin/python bench/api_ceiling.py [--work 0,50,100,135,200,400,1000,2000]
                                          [--measure-app] [--duration S]

api_bench.py compares the API with a bare Falcon app under the same waitress
settings. This script asks what that comparison can show on this machine at
all: it serves the same bare app, except that each response also carries the
API's headers and a user-sized body and the handler first runs W microseconds
of pure Python (a counted loop, calibrated in a tight loop in the server
process). No database, no I/O, no locks: whatever a real handler costs, it
cannot do better than a handler with no I/O that costs the same.

For each W it prints requests/s, the server's CPU time per request and the
ratio against W = 0, then, by interpolation, the handler cost at which the
ratio would be 40% and 25% (api_bench's GET and search targets).

With ``--measure-app`` it also seeds 100,000 users into a throwaway SQLite
file and times the real app in a tight in-process loop (the WSGI call, every
middleware and the access-log line included) for api_bench's two requests, so
the costs can be read against the table. ``--releases N`` makes each handler
release the interpreter lock N times (``time.sleep(0)`` between parts of the
loop), as the database drivers do around every statement. Figures only: nothing here passes or
fails.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench

# A response shaped like GET /api/v1/users/{id}: its body's size and the headers the
# API adds to every response (usermgmt.api.middleware).
USER_BODY = json.dumps(
    {
        "id": "0b9c7d3e-1f2a-4b5c-8d9e-0f1a2b3c4d5e",
        "email": "user000000@example.com",
        "username": "user000000",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "is_active": True,
        "is_verified": False,
        "roles": ["user"],
        "created_at": "2026-11-22T03:40:00.123456Z",
        "updated_at": "2026-11-22T03:40:00.123456Z",
        "last_login_at": None,
        "deleted_at": None,
        "profile": {"display_name": None, "bio": None, "timezone": "UTC", "locale": "en"},
    }
).encode()


def busy_loop(n: int) -> int:
    total = 0
    for i in range(n):
        total += i
    return total


def calibrate(micros: float) -> int:
    """Loop iterations that take ``micros`` in a tight loop (best of five rounds)."""
    if micros <= 0:
        return 0
    n, rounds = 100_000, []
    for _ in range(5):
        started = time.perf_counter()
        busy_loop(n)
        rounds.append(time.perf_counter() - started)
    per_iteration = min(rounds) / n
    return max(1, round(micros / 1e6 / per_iteration))


def working_app(micros: float, releases: int = 0):
    import falcon

    from usermgmt.api.middleware import API_CSP, SECURITY_HEADERS

    iterations = calibrate(micros)
    parts = releases + 1  # the loop in as many parts, the lock released between them
    headers = {
        **SECURITY_HEADERS,
        "Content-Security-Policy": API_CSP,
        "Cache-Control": "no-store",
        "X-Request-ID": "0" * 32,
    }

    class Working:
        def on_get(self, req, resp):
            busy_loop(iterations // parts)
            for _ in range(releases):
                time.sleep(0)  # lets another thread take the interpreter lock
                busy_loop(iterations // parts)
            resp.set_headers(headers)
            resp.content_type = falcon.MEDIA_JSON
            resp.data = USER_BODY

    app = falcon.App()
    app.add_route("/", Working())
    return app


def serve_working(port: int, threads: int, workers: int, micros: float, releases: int) -> None:
    """api_bench's bare server, with the working app in it when ``micros`` > 0."""
    if micros > 0:
        api_bench.bare_app = lambda: working_app(micros, releases)
    api_bench.serve_bare(port, threads, workers)


def measure(micros: float, args) -> dict:
    port = api_bench.free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            str(port),
            str(args.threads),
            str(args.workers),
            str(micros),
            str(args.releases if micros > 0 else 0),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        api_bench.wait_up(url, process)
        api_bench.wrk(url, args, duration=2)
        return api_bench.wrk(url, args, pid=process.pid)
    finally:
        api_bench.stop(process)


def crossing(points: list[tuple[float, float]], ratio: float) -> float | None:
    """The handler cost at which the ratio falls to ``ratio`` (linear between points)."""
    for (w0, r0), (w1, r1) in itertools.pairwise(points):
        if r0 >= ratio >= r1 and r0 != r1:
            return w0 + (r0 - ratio) * (w1 - w0) / (r0 - r1)
    return None


def app_costs(users: int) -> dict[str, float]:
    """Microseconds per WSGI call of api_bench's GET and search, in a tight loop."""
    import logging

    from usermgmt.api.app import create_app
    from usermgmt.api.process import configure_logging
    from usermgmt.core.config import load_settings
    from usermgmt.core.services import build_services

    workdir = Path(tempfile.mkdtemp(prefix="usermgmt-ceiling-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    try:
        seeded = api_bench.seed(url, users, 10)
        services = build_services(load_settings(database_url=url, rate_limit_auth="off"))
        configure_logging("INFO")
        sink = open(os.devnull, "w")  # noqa: SIM115
        for handler in logging.getLogger().handlers:
            handler.setStream(sink)
        app = create_app(services)
        auth = [("Authorization", f"Bearer {seeded['admin_token']}")]
        requests = {
            "GET /users/{id}": (f"/api/v1/users/{seeded['target_id']}", ""),
            "GET /users?search=user04242": ("/api/v1/users", "search=user04242&limit=20"),
        }
        costs = {}
        for label, (path, query) in requests.items():
            costs[label] = _per_call(app, path, query, auth)
        services.close()
        sink.close()
        return costs
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _per_call(app, path: str, query: str, headers) -> float:
    from falcon import testing

    environ = testing.create_environ(
        path=path, query_string=query, headers=dict(headers), remote_addr="127.0.0.1"
    )
    statuses: list[str] = []

    def start_response(status, response_headers, exc_info=None):
        statuses.append(status)

    def call() -> None:
        b"".join(app(dict(environ), start_response))

    call()
    if not statuses[0].startswith("200"):
        raise SystemExit(f"{path}?{query}: {statuses[0]}")
    for _ in range(100):
        call()
    rounds = []
    calls = 1000 if not query else 200
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        rounds.append((time.perf_counter() - started) / calls)
    return min(rounds) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="0,50,100,135,200,400,1000,2000")
    parser.add_argument("--duration", type=int, default=8, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--measure-app", action="store_true")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--releases",
        type=int,
        default=0,
        help="times each handler releases the interpreter lock (time.sleep(0)), as a "
        "database driver does around every statement",
    )
    parser.add_argument(
        "--serve", nargs=5, metavar=("PORT", "THREADS", "WORKERS", "MICROS", "RELEASES")
    )
    args = parser.parse_args()
    if args.serve:
        port, threads, workers, micros, releases = args.serve
        serve_working(int(port), int(threads), int(workers), float(micros), int(releases))
        return 0
    if args.threads is None:
        from usermgmt.api.server import default_threads

        args.threads = default_threads()
    if shutil.which("wrk") is None:
        print("wrk is required: apt-get install -y wrk", file=sys.stderr)
        return 1
    work = sorted({0.0, *(float(w) for w in args.work.split(",") if w.strip())})
    print(
        f"cores: {os.cpu_count()}, server processes: {args.workers}, waitress threads per "
        f"process: {args.threads}, connections: {args.connections}, {args.duration}s per run, "
        f"lock releases per handler: {args.releases}",
        flush=True,
    )
    costs = app_costs(args.users) if args.measure_app else {}

    header = f"{'handler work (us)':>18} {'req/s':>9} {'p99 ms':>8} {'cpu ms/req':>10} {'ratio':>7}"
    print("\n" + header + "\n" + "-" * len(header), flush=True)
    points = []
    base = None
    for micros in work:
        result = measure(micros, args)
        base = base or result["rps"]
        ratio = result["rps"] / base
        points.append((micros, ratio))
        print(
            f"{micros:18.0f} {result['rps']:9.0f} {result['p99']:8.2f} "
            f"{result['cpu_ms']:10.3f} {ratio:7.0%}",
            flush=True,
        )
    print()
    for target, what in ((0.40, "GET target"), (0.25, "search target")):
        at = crossing(points, target)
        if at is None:
            print(f"ratio {target:.0%} ({what}): not crossed within the work measured")
        else:
            print(f"ratio {target:.0%} ({what}): a handler costing at most {at:.0f} us")
    for label, micros in costs.items():
        print(f"the real app, in-process, {label}: {micros:.0f} us per call")
    print(
        "\nW = 0 is api_bench's bare app; W > 0 adds the API's headers and a user-sized "
        "body.\nIn-process costs come from a tight loop, where a handler runs fastest: "
        "under load it runs slower, a pure-Python loop least of all."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
