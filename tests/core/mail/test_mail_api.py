"""End to end through the REST API: the reset mail arrives at a real SMTP server and works.

Covers usermgmt.core.mail delivery as the API's reset and verification flows use it
(here for the SMTP server fixtures of this folder).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request

from falcon import testing

from usermgmt.api.app import create_app

from .conftest import SmtpServer
from .helpers import free_port

API = "/api/v1"
PASSWORD = "Us3r-Passw0rd-Long"
NEW_PASSWORD = "N3w-Reset-Passw0rd!"
TOKEN_RE = re.compile(r"/reset-password\?token=([A-Za-z0-9_\-]+)")


def token_from(received) -> str:
    text = received.message.get_body(("plain",)).get_content()
    (token,) = set(TOKEN_RE.findall(text))
    return token


def reset_and_login(client, token: str) -> None:
    reset = client.simulate_post(
        f"{API}/auth/reset-password", json={"token": token, "new_password": NEW_PASSWORD}
    )
    assert reset.status_code == 204, reset.text
    old = client.simulate_post(
        f"{API}/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    new = client.simulate_post(
        f"{API}/auth/login", json={"email": "ada@example.com", "password": NEW_PASSWORD}
    )
    assert new.status_code == 200, new.text
    again = client.simulate_post(
        f"{API}/auth/reset-password", json={"token": token, "new_password": PASSWORD}
    )
    assert again.status_code == 400 and again.json["error"]["code"] == "INVALID_TOKEN"


def register(client) -> None:
    response = client.simulate_post(
        f"{API}/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201, response.text


def test_forgot_password_mail_arrives_and_its_link_resets(make_services, smtp_server):
    services = make_services(smtp_url=smtp_server.url, public_url="https://app.example.com/")
    client = testing.TestClient(create_app(services))
    register(client)
    services.mail.deliver_pending()  # the verification mail
    smtp_server.received.clear()

    response = client.simulate_post(
        f"{API}/auth/forgot-password", json={"email": "ada@example.com"}
    )
    assert response.status_code == 202
    assert services.mail.deliver_pending().sent == 1

    (mail,) = smtp_server.received
    assert mail.rcpt_tos == ["ada@example.com"]
    assert (
        "https://app.example.com/reset-password?token="
        in mail.message.get_body(("plain",)).get_content()
    )
    reset_and_login(client, token_from(mail))


def test_forgot_password_answers_202_while_smtp_is_down(make_services, clock):
    port = free_port()
    # The reset link outlives the outage (the clock moves 7 hours before it is used).
    services = make_services(
        smtp_url=f"smtp://127.0.0.1:{port}", reset_token_ttl=86400, clock=clock
    )
    client = testing.TestClient(create_app(services))
    register(client)

    unknown = client.simulate_post(
        f"{API}/auth/forgot-password", json={"email": "nobody@example.com"}
    )
    known = client.simulate_post(f"{API}/auth/forgot-password", json={"email": "ada@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json == unknown.json
    report = services.mail.deliver_pending()
    assert report.sent == 0 and report.retried == 2  # verification + reset, both kept

    server = SmtpServer(port=port).start()
    try:
        clock.advance(hours=7)
        assert services.mail.deliver_pending().sent == 2
    finally:
        server.stop()
    (reset_mail,) = [r for r in server.received if "reset" in r.message["Subject"].lower()]
    reset_and_login(client, token_from(reset_mail))


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return 0


def test_serve_delivers_in_the_background(
    services, operator, ctx, smtp_server, database_url, tmp_path
):
    services.users.create(operator, ctx, {"email": "ada@example.com", "password": PASSWORD})
    port = free_port()
    env = {
        **os.environ,
        "USERMGMT_DATABASE_URL": database_url,
        "USERMGMT_SMTP_URL": smtp_server.url,
        "USERMGMT_RATE_LIMIT_AUTH": "off",
        "USERMGMT_LOG_FORMAT": "json",
    }
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "usermgmt.api.server", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if _get(f"{base}/health/live") == 200 or process.poll() is not None:
                break
            threading.Event().wait(0.05)
        request = urllib.request.Request(
            f"{base}{API}/auth/forgot-password",
            data=json.dumps({"email": "ada@example.com"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
        for _ in range(400):  # the deliverer polls every 2 s
            if smtp_server.received:
                break
            threading.Event().wait(0.025)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=40) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert len(smtp_server.received) == 1, output
    token = token_from(smtp_server.received[0])
    assert token not in output
    assert f"mail:    smtp://127.0.0.1:{smtp_server.port}" in output
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [e["message"] for e in events if e["logger"] == "usermgmt.mail"]
    assert any(m.startswith("mail deliverer started") for m in messages)
    assert "mail deliverer stopped" in messages
    sent = [e for e in events if e.get("mail_template") == "password_reset"]
    assert sent and sent[0]["mail_to"] == "ada@example.com"
