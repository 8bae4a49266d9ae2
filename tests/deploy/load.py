"""A mixed load on live servers: logins (writes), reads by id, listings, profile edits."""

from __future__ import annotations

import http.client
import json
import threading

API = "/api/v1"


class Client:
    """One keep-alive connection to one server."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, method: str, path: str, body=None, token: str | None = None):
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, raw.decode(errors="replace")

    def close(self) -> None:
        self.conn.close()


def mixed_load(
    ports: list[int],
    email: str,
    password: str,
    *,
    clients: int = 6,
    rounds: int = 25,
    stop_at_first_failure: bool = False,
) -> tuple[int, list[str]]:
    """Run the load from ``clients`` threads over all ``ports``; (requests, failures)."""
    failures: list[str] = []
    done = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def expect(status: int, body: str, what: str) -> bool:
        with lock:
            done[0] += 1
            if status < 400:
                return True
            failures.append(f"{what}: {status} {body[:300]}")
            if stop_at_first_failure:
                stop.set()
        return False

    def run(n: int) -> None:
        conns = [Client(port) for port in ports]
        try:
            for i in range(rounds):
                if stop.is_set():
                    return
                client = conns[(n + i) % len(conns)]
                status, body = client.call(
                    "POST", f"{API}/auth/login", {"email": email, "password": password}
                )
                if not expect(status, body, "login"):
                    continue
                token = json.loads(body)["tokens"]["access_token"]
                status, body = client.call("GET", f"{API}/auth/me", token=token)
                if not expect(status, body, "me"):
                    continue
                user_id = json.loads(body)["id"]
                status, body = client.call("GET", f"{API}/users/{user_id}", token=token)
                expect(status, body, "get user")
                status, body = client.call("GET", f"{API}/users?limit=5&search=load", token=token)
                expect(status, body, "list users")
                status, body = client.call(
                    "PATCH", f"{API}/auth/me", {"first_name": f"c{n}r{i}"}, token=token
                )
                expect(status, body, "edit profile")
        except Exception as exc:  # a dropped connection is a failure too
            with lock:
                failures.append(f"client {n}: {type(exc).__name__}: {exc}")
        finally:
            for conn in conns:
                conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return done[0], failures
