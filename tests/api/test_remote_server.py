"""Import and export through a real `usermgmt serve` (waitress): limits and streaming."""

from __future__ import annotations

import http.client
import json

from .api_helpers import API, STRONG_PASSWORD
from .test_server import call, seed_user


def test_import_and_export_over_http(start_server, database_url):
    seed_user(database_url, "root@example.com", roles=("admin",))
    server = start_server(
        database_url,
        env={"USERMGMT_MAX_BODY_BYTES": "1024", "USERMGMT_MAX_IMPORT_BYTES": "65536"},
    )
    login = {"email": "root@example.com", "password": STRONG_PASSWORD}
    token = call(server.url + f"{API}/auth/login", "POST", login)[2]["tokens"]["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)

    def request(method, path, body=None, headers=None):
        connection.request(method, path, body=body, headers={**auth, **(headers or {})})
        return connection.getresponse()

    # Over the JSON body limit, within the import's: waitress lets it through.
    rows = "email\n" + "".join(f"user{i:03d}@example.com\n" for i in range(200))
    assert len(rows) > 2 * 1024
    answer = request("POST", f"{API}/users/import", rows, {"Content-Type": "text/csv"})
    report = json.loads(answer.read())
    assert answer.status == 200 and report["created"] == 200, report
    # Sent in chunks, with no length: read as it comes.
    pieces = (line.encode() for line in rows.replace("user", "more").splitlines(keepends=True))
    answer = request(
        "POST", f"{API}/users/import", pieces, {"Content-Type": "text/csv"}
    )  # http.client sends an iterable chunked
    assert answer.status == 200 and json.loads(answer.read())["created"] == 200
    too_big = "email\n" + "x" * 70_000
    answer = request("POST", f"{API}/users/import", too_big, {"Content-Type": "text/csv"})
    assert answer.status == 413
    assert json.loads(answer.read())["error"]["code"] == "PAYLOAD_TOO_LARGE"

    answer = request("GET", f"{API}/users/export?format=jsonl")
    assert answer.status == 200
    assert answer.getheader("Transfer-Encoding") == "chunked"
    assert answer.getheader("Content-Type") == "application/x-ndjson"
    lines = answer.read().splitlines()
    assert len(lines) == 401 and json.loads(lines[0])["email"] == "root@example.com"
    connection.close()
