"""Webhook delivery throughput, and what an event costs a user write.

    .venv/bin/python bench/webhook_bench.py [--events 2000] [--writes 200] [--database-url URL]

The receiver is a separate process on loopback that answers 204 at once (HTTP/1.1,
keep-alive). One deliverer (one server's worth: ``deliver_pending``) sends the
events of a bulk import. Then the same user update is timed with no subscription
and with one: the difference is the cost of writing the event. Prints figures;
never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from usermgmt.core.config import load_settings
from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.services import build_services

ROUNDS = 5
RECEIVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
class S(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_listening(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("receiver did not start")


def time_writes(services, uid: str, n: int, tag: str) -> float:
    operator, ctx = Actor.operator("cli", "bench"), RequestContext()
    started = time.perf_counter()
    for i in range(n):
        services.users.update(operator, ctx, uid, {"first_name": f"{tag}{i}"})
    return (time.perf_counter() - started) / n * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    os.environ["USERMGMT_DATA_DIR"] = str(folder)
    url = args.database_url or f"sqlite:///{folder / 'bench.db'}"
    services = build_services(
        load_settings(database_url=url, webhook_allow_private=True, bcrypt_rounds=4)
    )
    operator, ctx = Actor.operator("cli", "bench"), RequestContext()
    port = free_port()
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER, str(port)])
    try:
        wait_listening(port)
        hook = f"http://127.0.0.1:{port}/hooks"
        user = services.users.create(operator, ctx, {"email": "bench@example.com"})
        uid = str(user.id)
        created = services.webhooks.create(operator, ctx, {"url": hook, "events": ["*"]})
        wid = str(created.webhook.id)
        time_writes(services, uid, 20, "warm")
        # Alternate rounds without and with an enabled subscription; medians (a shared
        # machine is noisy).
        without, with_one = [], []
        for r in range(ROUNDS):
            services.webhooks.update(operator, ctx, wid, {"enabled": False})
            without.append(time_writes(services, uid, args.writes, f"a{r}-"))
            services.webhooks.update(operator, ctx, wid, {"enabled": True})
            with_one.append(time_writes(services, uid, args.writes, f"b{r}-"))
            services.webhooks.deliver_pending()  # (not timed: the writes' own events)
        without, with_one = statistics.median(without), statistics.median(with_one)

        rows = [(i + 2, {"email": f"b{i}@example.com"}) for i in range(args.events)]
        services.transfer.import_users(operator, ctx, rows)
        started = time.perf_counter()
        report = services.webhooks.deliver_pending()
        elapsed = time.perf_counter() - started
        page = services.webhooks.deliveries(operator, wid, status="failed")
        print(f"database: {services.db.dialect}")
        print(
            f"delivered {report.delivered} events in {elapsed:.2f} s: "
            f"{report.delivered / elapsed:,.0f} deliveries/s (one deliverer, "
            f"{page.meta.total} failed)"
        )
        print(
            f"user update (median of {ROUNDS} rounds of {args.writes}): {without:.2f} ms "
            f"without a subscription, {with_one:.2f} ms with one "
            f"({with_one - without:+.2f} ms for the event)"
        )
    finally:
        receiver.terminate()
        receiver.wait()
        services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
