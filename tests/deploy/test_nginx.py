"""The shipped nginx site before a live server: X-Forwarded-For is believed only from nginx.

nginx connects to the API from 127.0.0.2, the one address in
``USERMGMT_TRUSTED_PROXIES``; clients connect from addresses of their own
(127.0.0.5, 127.0.0.6). Through nginx the API takes the address nginx saw;
a client talking to the API directly is its socket's address, whatever
X-Forwarded-For it sends. What the API took for the client's address shows in
its access log line and in the login rate limit's buckets.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid

import pytest

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def proxied(serve, nginx_before, tmp_path):
    """A live server that trusts 127.0.0.2, and nginx before it (connecting from there)."""
    server = serve(
        f"sqlite:///{tmp_path / 'nginx.db'}",
        env={"USERMGMT_TRUSTED_PROXIES": "127.0.0.2", "USERMGMT_RATE_LIMIT_LOGIN": "2/minute"},
    )
    return server, nginx_before(server.port)


ANN, BOB = "127.0.0.5", "127.0.0.6"


def login(port: int, source: str, forwarded_for: str | None = None) -> tuple[int, str]:
    """A failed login (nobody has this account) from ``source``; (status, request id)."""
    request_id = uuid.uuid4().hex
    headers = {"Content-Type": "application/json", "X-Request-ID": request_id}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    try:
        body = json.dumps({"email": "nobody@example.com", "password": "Not-The-Password-1"})
        conn.request("POST", LOGIN, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("X-Request-ID")
    finally:
        conn.close()


def logged_ip(server, request_id: str) -> str:
    for line in server.log().splitlines():
        if line.startswith("{") and request_id in line:
            entry = json.loads(line)
            if entry.get("request_id") == request_id and "status" in entry:
                return entry["ip"]
    raise AssertionError(f"no access log line for {request_id}:\n{server.log()}")


def test_forwarded_for_is_believed_through_nginx_only(proxied):
    server, nginx = proxied
    status, request_id = login(nginx.port, ANN)
    assert status == 401
    assert logged_ip(server, request_id) == ANN  # not nginx's 127.0.0.2
    # A client's own header is kept on the left; the address nginx saw is the client.
    status, request_id = login(nginx.port, ANN, forwarded_for="198.51.100.7")
    assert logged_ip(server, request_id) == ANN
    # A direct request forging the header is taken for what its socket says.
    status, request_id = login(server.port, BOB, forwarded_for="198.51.100.7")
    assert status == 401
    assert logged_ip(server, request_id) == BOB


def test_nginx_logs_the_request_id_the_api_answered_with(proxied):
    _, nginx = proxied
    _, request_id = login(nginx.port, ANN)
    deadline = time.monotonic() + 10  # nginx writes the line once the response is sent
    while f"id={request_id}" not in nginx.access_log.read_text():
        assert time.monotonic() < deadline, nginx.access_log.read_text()
        time.sleep(0.05)


def test_each_client_behind_nginx_has_its_own_rate_limit_bucket(proxied):
    server, nginx = proxied  # 2 logins a minute per client address
    assert [login(nginx.port, ANN)[0] for _ in range(3)] == [401, 401, 429]
    assert login(nginx.port, BOB)[0] == 401
    # Bob directly, forging Ann's address... or another: his own bucket all the same.
    assert login(server.port, BOB, forwarded_for=ANN)[0] == 401
    assert login(server.port, BOB, forwarded_for="198.51.100.7")[0] == 429
