"""Mail delivery throughput: messages/s through the outbox to SMTP and to .eml files.

    .venv/bin/python bench/mail_delivery.py [--messages 500] [--database-url URL]

The SMTP server is aiosmtpd on loopback in this process (it shares the GIL with
the deliverer, so real servers on their own cores do better). Prints figures;
never passes or fails on time.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import time
from pathlib import Path

from aiosmtpd.controller import Controller

from usermgmt.core.config import load_settings
from usermgmt.core.services import build_services, outbox


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def enqueue(services, n: int) -> float:
    started = time.perf_counter()
    with services.db.write() as s:
        for i in range(n):
            outbox.enqueue(
                s,
                services.settings,
                "password_reset",
                f"user{i}@example.com",
                user_id=None,
                context={
                    "link": f"http://127.0.0.1:8000/reset-password?token=t{i}",
                    "token": f"t{i}",
                },
                now=services.clock.now(),
                ids=services.ids,
            )
    return time.perf_counter() - started


def run(label: str, url: str, n: int, **settings) -> None:
    services = build_services(load_settings(database_url=url, **settings))
    try:
        took_enqueue = enqueue(services, n)
        started = time.perf_counter()
        report = services.mail.deliver_pending()
        took = time.perf_counter() - started
        assert report.sent == n, report
        print(
            f"{label:<28} {n:>6} messages  enqueue {n / took_enqueue:>8.0f}/s  "
            f"deliver {n / took:>7.0f}/s  ({took * 1000 / n:.2f} ms each)"
        )
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["USERMGMT_DATA_DIR"] = tmp
        sink = Sink()
        port = free_port()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            for label, extra in (
                ("smtp (one connection/batch)", {"smtp_url": f"smtp://127.0.0.1:{port}"}),
                ("file transport", {"mail_dir": str(Path(tmp) / "mail")}),
            ):
                url = args.database_url or f"sqlite:///{Path(tmp) / (label[:4] + '.db')}"
                run(label, url, args.messages, **extra)
        finally:
            controller.stop()
        print(f"smtp server received {sink.count} messages")


if __name__ == "__main__":
    main()
