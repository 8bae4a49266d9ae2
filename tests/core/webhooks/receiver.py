"""A real HTTP receiver on loopback that checks Standard Webhooks signatures."""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from dataclasses import dataclass

from usermgmt.core.webhooks import signing


@dataclass
class Received:
    webhook_id: str
    timestamp: int
    signature_ok: bool
    payload: dict
    headers: dict

    @property
    def type(self) -> str:
        return self.payload["type"]


class _Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128  # deliverers keep several connections open at once
    daemon_threads = True


class Receiver:
    """``status``: what it answers; ``hold``: when set, requests wait for ``release``."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.status = 204
        self.body = b""  # what it answers with
        self.headers: dict[str, str] = {}
        self.received: list[Received] = []
        self.hold = False
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.port = 0
        self._server: _Server | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                wid, stamp = self.headers["webhook-id"], int(self.headers["webhook-timestamp"])
                ok = receiver.secret is not None and signing.verify(
                    receiver.secret, wid, stamp, body, self.headers["webhook-signature"]
                )
                with receiver._lock:
                    receiver.received.append(
                        Received(wid, stamp, ok, json.loads(body), dict(self.headers))
                    )
                receiver.arrived.set()
                if receiver.hold:
                    receiver.release.wait(60)
                self.send_response(receiver.status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(receiver.body)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the deliverer reads only so much
                    self.wfile.write(receiver.body)

            def log_message(self, *args):
                pass

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in self.received if r.type == event_type]

    def ids(self) -> list[str]:
        return [r.webhook_id for r in self.received]
