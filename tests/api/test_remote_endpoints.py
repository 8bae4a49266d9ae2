"""The endpoints remote mode needs: each one's answer, refusals and audit, on both databases.

What a remote CLI prints must equal what the embedded CLI prints, so several
tests run the real CLI (in-process) on the same database and compare.
"""

from __future__ import annotations

import json
import uuid

import pytest
from falcon import testing
from sqlalchemy import create_engine, select, text, update
from typer.testing import CliRunner

from usermgmt.api import resources_remote
from usermgmt.cli.app import PROG_NAME
from usermgmt.cli.app import app as cli_app
from usermgmt.core.models import MailMessage

from .api_helpers import API, OTHER_PASSWORD, STRONG_PASSWORD, Api, assert_error

H = Api.bearer
CSV_TYPE = {"Content-Type": "text/csv"}

ADMIN_ONLY = [
    ("POST", f"{API}/users/ensure", {"json": {"email": "x@example.com"}}),
    ("POST", f"{API}/users/import", {"body": "email\nx@example.com\n", "headers": CSV_TYPE}),
    ("GET", f"{API}/users/export", {}),
    ("POST", f"{API}/audit/verify", {}),
    ("POST", f"{API}/maintenance/purge", {}),
    ("GET", f"{API}/mail", {}),
    ("POST", f"{API}/mail/deliver", {}),
    ("POST", f"{API}/mail/0b9d1c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/retry", {}),
    ("GET", f"{API}/audit/head", {}),
    ("DELETE", f"{API}/sessions/0b9d1c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e", {}),
    (
        "PUT",
        f"{API}/users/0b9d1c3e-5f6a-4b7c-8d9e-0f1a2b3c4d5e/password",
        {"json": {"password": OTHER_PASSWORD}},
    ),
]


def call(api: Api, method: str, path: str, token: str | None, **kwargs):
    headers = {**kwargs.pop("headers", {}), **(H(token) if token else {})}
    return api.simulate_request(method, path, headers=headers, **kwargs)


def events(api: Api, operator, action: str) -> list:
    return api.services.audit.query(operator, {"action": action, "limit": 1000}).data


def user_emails(api: Api, operator) -> list[str]:
    page = api.services.user_reads.list(operator, {"limit": 100, "include_deleted": True})
    return sorted(u.email for u in page.data)


def run_cli(database_url: str, *args: str, input: bytes | None = None):
    result = CliRunner().invoke(
        cli_app, ["--database-url", database_url, *args], input=input, prog_name=PROG_NAME
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


# ---- routing and permissions ------------------------------------------------------------


def test_literal_user_paths_live_beside_user_ids(api, admin, user):
    _, token = admin
    user_id, _ = user
    assert api.simulate_get(f"{API}/users/{user_id}", headers=H(token)).json["email"] == (
        "ada@example.com"
    )
    resolved = api.simulate_get(f"{API}/users/resolve", params={"ref": "ada"}, headers=H(token))
    assert resolved.status_code == 200 and resolved.json["id"] == user_id
    assert api.simulate_get(f"{API}/users/export", headers=H(token)).status_code == 200
    # A write on a literal path is not taken for an operation on a user id.
    assert_error(
        api.simulate_put(f"{API}/users/export", headers=H(token)), 405, "METHOD_NOT_ALLOWED"
    )


@pytest.mark.parametrize(("method", "path", "kwargs"), ADMIN_ONLY)
def test_admin_only_endpoints_refuse_moderators_users_and_strangers(
    api, admin, moderator, user, operator, method, path, kwargs
):
    before = len(api.services.audit.query(operator, {"limit": 1000}).data)
    for _id, token in (moderator, user):
        assert_error(call(api, method, path, token, **kwargs), 403, "FORBIDDEN")
    assert_error(call(api, method, path, None, **kwargs), 401, "UNAUTHORIZED")
    assert len(api.services.audit.query(operator, {"limit": 1000}).data) == before
    assert "x@example.com" not in user_emails(api, operator)


# ---- info -----------------------------------------------------------------------------


def test_info_names_server_schema_and_caller(api, user, backend):
    from usermgmt import __version__

    user_id, token = user
    info = api.simulate_get(f"{API}/info", headers=H(token))
    assert info.status_code == 200, info.text
    body = info.json
    assert body["version"] == __version__
    assert body["schema_revision"] == api.services.migrations.state().head
    assert body["database"] == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    assert body["me"]["id"] == user_id and "password_hash" not in body["me"]
    assert_error(api.simulate_get(f"{API}/info"), 401, "UNAUTHORIZED")


# ---- resolve --------------------------------------------------------------------------


def test_resolve_by_id_email_or_username_like_users_show(api, admin, moderator, user, database_url):
    _, admin_token = admin
    _, mod_token = moderator
    user_id, _ = user
    for ref in (user_id, "ADA@Example.com", "Ada", "  ada  "):
        for token in (admin_token, mod_token):
            found = api.simulate_get(f"{API}/users/resolve", params={"ref": ref}, headers=H(token))
            assert found.status_code == 200, (ref, found.text)
            assert found.json["id"] == user_id
    shown = run_cli(database_url, "users", "show", "ada", "-o", "json")
    assert (
        json.loads(shown.stdout)
        == api.simulate_get(
            f"{API}/users/resolve", params={"ref": "ada"}, headers=H(admin_token)
        ).json
    )
    missing = api.simulate_get(
        f"{API}/users/resolve", params={"ref": "nobody@example.com"}, headers=H(admin_token)
    )
    assert_error(missing, 404, "NOT_FOUND")
    assert_error(
        api.simulate_get(f"{API}/users/resolve", headers=H(admin_token)), 400, "VALIDATION_ERROR"
    )


def test_a_user_resolves_only_themselves_and_learns_nothing_else(api, admin, user):
    user_id, token = user
    mine = api.simulate_get(f"{API}/users/resolve", params={"ref": "ada"}, headers=H(token))
    assert mine.status_code == 200 and mine.json["id"] == user_id
    for ref in ("root", "root@example.com", "nobody@example.com", str(uuid.uuid4())):
        refused = api.simulate_get(f"{API}/users/resolve", params={"ref": ref}, headers=H(token))
        assert_error(refused, 403, "FORBIDDEN")


def test_resolve_takes_an_id_prefix_for_moderators_not_users(api, admin, moderator, user):
    admin_id, _ = admin
    _, mod_token = moderator
    user_id, user_token = user
    prefix = {"ref": user_id[:8]}
    found = api.simulate_get(f"{API}/users/resolve", params=prefix, headers=H(mod_token))
    assert found.status_code == 200 and found.json["id"] == user_id
    probe = {"ref": admin_id[:8]}
    refused = api.simulate_get(f"{API}/users/resolve", params=probe, headers=H(user_token))
    assert_error(refused, 403, "FORBIDDEN")


def test_resolve_finds_deleted_users_for_admins_only(api, admin, moderator, user):
    _, admin_token = admin
    _, mod_token = moderator
    user_id, _ = user
    assert api.simulate_delete(f"{API}/users/{user_id}", headers=H(admin_token)).status_code == 204
    params = {"ref": "ada@example.com", "include_deleted": "true"}
    found = api.simulate_get(f"{API}/users/resolve", params=params, headers=H(admin_token))
    assert found.status_code == 200 and found.json["deleted_at"] is not None
    plain = {"ref": "ada@example.com"}
    gone = api.simulate_get(f"{API}/users/resolve", params=plain, headers=H(admin_token))
    assert_error(gone, 404, "NOT_FOUND")
    refused = api.simulate_get(f"{API}/users/resolve", params=params, headers=H(mod_token))
    assert_error(refused, 403, "FORBIDDEN")


# ---- ensure ---------------------------------------------------------------------------


def test_ensure_creates_updates_or_leaves_and_audits_with_request_id(api, admin, operator):
    admin_id, token = admin
    spec = {"email": "ci@example.com", "roles": ["moderator"], "password": STRONG_PASSWORD}
    headers = {**H(token), "X-Request-ID": "ensure-0001-abcd"}
    first = api.simulate_post(f"{API}/users/ensure", json=spec, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json["result"] == "created" and first.json["user"]["roles"] == ["moderator"]
    again = api.simulate_post(f"{API}/users/ensure", json=spec, headers=H(token))
    assert again.json["result"] == "unchanged"
    changed = api.simulate_post(
        f"{API}/users/ensure",
        json={"email": "ci@example.com", "first_name": "Ci"},
        headers={**H(token), "X-Request-ID": "ensure-0002-abcd"},
    )
    assert changed.json["result"] == "updated"
    assert changed.json["user"]["first_name"] == "Ci"
    assert changed.json["user"]["roles"] == ["moderator"]  # not given: left alone
    created = events(api, operator, "user.created")[0]
    updated = events(api, operator, "user.updated")[0]
    assert (str(created.actor_id), created.request_id) == (admin_id, "ensure-0001-abcd")
    assert (str(updated.actor_id), updated.request_id) == (admin_id, "ensure-0002-abcd")
    bad = api.simulate_post(
        f"{API}/users/ensure", json={"email": "ci@example.com", "colour": "red"}, headers=H(token)
    )
    assert_error(bad, 400, "VALIDATION_ERROR")


# ---- set-password, one session ---------------------------------------------------------


def newest_event(api: Api, operator):
    return api.services.audit.query(operator, {"limit": 1}).data[0]


def test_set_password_ends_sessions_and_is_audited(api, admin, user, operator):
    admin_id, token = admin
    user_id, user_token = user
    path = f"{API}/users/{user_id}/password"
    weak = api.simulate_put(path, json={"password": "short"}, headers=H(token))
    assert "password" in assert_error(weak, 400, "VALIDATION_ERROR")["field_errors"]
    done = api.simulate_put(
        path,
        json={"password": OTHER_PASSWORD},
        headers={**H(token), "X-Request-ID": "password-0001-abcd"},
    )
    assert done.status_code == 204, done.text
    assert_error(api.simulate_get(f"{API}/auth/me", headers=H(user_token)), 401, "UNAUTHORIZED")
    assert api.login("ada@example.com", OTHER_PASSWORD).status_code == 200
    event = next(
        e
        for e in api.services.audit.query(operator, {"limit": 50}).data
        if e.request_id == "password-0001-abcd"
    )
    assert str(event.actor_id) == admin_id and str(event.target_id) == user_id
    assert OTHER_PASSWORD not in json.dumps(event.changes)
    unknown = api.simulate_put(
        f"{API}/users/{uuid.uuid4()}/password", json={"password": OTHER_PASSWORD}, headers=H(token)
    )
    assert_error(unknown, 404, "NOT_FOUND")


def test_one_session_is_revoked_by_id(api, admin, user, operator):
    admin_id, token = admin
    user_id, user_token = user
    [session] = api.simulate_get(f"{API}/users/{user_id}/sessions", headers=H(token)).json["data"]
    revoked = api.simulate_delete(
        f"{API}/sessions/{session['id']}",
        headers={**H(token), "X-Request-ID": "session-0001-abcd"},
    )
    assert revoked.status_code == 204, revoked.text
    assert_error(api.simulate_get(f"{API}/auth/me", headers=H(user_token)), 401, "UNAUTHORIZED")
    event = newest_event(api, operator)
    assert (event.action, str(event.actor_id)) == ("session.revoked", admin_id)
    assert event.request_id == "session-0001-abcd"
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        missing = api.simulate_delete(f"{API}/sessions/{unknown}", headers=H(token))
        assert_error(missing, 404, "NOT_FOUND")


# ---- import ---------------------------------------------------------------------------

GOOD_CSV = "email,username,roles\nann@example.com,ann,user\nbob@example.com,bob,moderator\n"


def upload(api, token, body, *, content_type="text/csv", request_id=None, **params):
    headers = {**H(token), "Content-Type": content_type}
    if request_id:
        headers["X-Request-ID"] = request_id
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()}
    return api.simulate_post(f"{API}/users/import", body=body, headers=headers, params=query)


def test_import_csv_reports_and_audits_each_user(api, admin, operator):
    admin_id, token = admin
    result = upload(api, token, GOOD_CSV, request_id="import-0001-abcd")
    assert result.status_code == 200, result.text
    assert result.json == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "skipped": 0,
        "errors": [],
        "committed": True,
        "dry_run": False,
        "stopped_at_line": None,
        "not_checked": 0,
    }
    assert {"ann@example.com", "bob@example.com"} <= set(user_emails(api, operator))
    imported = events(api, operator, "user.imported")
    assert len(imported) == 2
    assert {(str(e.actor_id), e.request_id) for e in imported} == {(admin_id, "import-0001-abcd")}


def test_a_bad_row_writes_nothing_and_is_reported_with_its_line(api, admin, operator):
    _, token = admin
    before = user_emails(api, operator)
    audit_before = api.services.audit.head()
    body = (
        '{"email": "ann@example.com"}\n'
        "\n"
        '{"email": "not an email"}\n'
        '{"email": "bob@example.com", "roles": "wizard"}\n'
    )
    result = upload(api, token, body, content_type="application/x-ndjson")
    assert result.status_code == 200, result.text
    report = result.json
    assert report["committed"] is False and report["created"] == 1
    assert [e["line"] for e in report["errors"]] == [3, 4]
    assert "email" in report["errors"][0]["reason"]
    assert user_emails(api, operator) == before  # all or nothing
    assert api.services.audit.head() == audit_before

    skipped = upload(api, token, body, content_type="application/x-ndjson", on_conflict="skip")
    assert skipped.json["committed"] is True and len(skipped.json["errors"]) == 2
    assert "ann@example.com" in user_emails(api, operator)


def test_import_report_is_what_the_cli_prints(api, admin, database_url, tmp_path):
    _, token = admin
    body = "email,username\nann@example.com,ann\nroot@example.com,x\nbad,y\n"
    path = tmp_path / "users.csv"
    path.write_text(body)
    printed = run_cli(database_url, "users", "import", str(path), "--dry-run", "-o", "json")
    assert printed.exit_code == 2
    expected = json.loads(printed.stdout)
    assert expected.pop("file") == str(path)
    remote = upload(api, token, body, dry_run=True, filename=str(path))
    assert remote.status_code == 200 and remote.json == expected


def test_import_formats_from_query_content_type_or_first_character(api, admin, operator):
    _, token = admin
    array = '[{"email": "a1@example.com"},\n {"email": "a2@example.com"}]'
    as_json = upload(api, token, array, content_type="application/json")
    assert as_json.json["created"] == 2, as_json.text
    sniffed = upload(api, token, '[{"email": "a3@example.com"}]', content_type="text/plain")
    assert sniffed.json["created"] == 1, sniffed.text
    forced = upload(
        api, token, "email\na4@example.com\n", content_type="application/json", format="csv"
    )
    assert forced.json["created"] == 1, forced.text
    with_bom = upload(api, token, "\ufeffemail\na5@example.com\n".encode())
    assert with_bom.json["created"] == 1, with_bom.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"format": "xml"}, "format"),
        ({"on_conflict": "merge"}, "on_conflict"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"max_errors": "-1"}, "max_errors"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_import_refuses_bad_parameters(api, admin, operator, params, field):
    _, token = admin
    before = user_emails(api, operator)
    error = assert_error(upload(api, token, GOOD_CSV, **params), 400, "VALIDATION_ERROR")
    assert field in error["field_errors"]
    assert user_emails(api, operator) == before


def test_an_unreadable_file_is_refused_naming_the_line(api, admin, operator):
    _, token = admin
    before = user_emails(api, operator)
    header = upload(api, token, "email,shoe_size\na@example.com,42\n", filename="users.csv")
    error = assert_error(header, 400, "VALIDATION_ERROR")
    assert error["message"].startswith("users.csv: line 1: unknown column(s) 'shoe_size'")
    not_utf8 = upload(api, token, b"email\na@example.com\n\xff\n")
    assert (
        "upload: line 3: not valid UTF-8"
        in assert_error(not_utf8, 400, "VALIDATION_ERROR")["message"]
    )
    not_array = upload(api, token, '{"email": "a@example.com"}', format="json")
    assert_error(not_array, 400, "VALIDATION_ERROR")
    media = upload(api, token, GOOD_CSV, content_type="application/xml")
    assert_error(media, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert user_emails(api, operator) == before


def test_import_has_its_own_body_limit(make_api, operator, ctx):
    api = make_api(max_body_bytes=1024, max_import_bytes=4096)
    _, token = api.make_user(operator, ctx, "root@example.com", roles=("admin",))
    rows = "".join(f"user{i}@example.com\n" for i in range(100))  # ~2 KiB: over the JSON limit
    assert upload(api, token, "email\n" + rows).json["created"] == 100
    big = "email\n" + "".join(f"other{i}@example.com\n" for i in range(300))  # ~6 KiB
    error = assert_error(upload(api, token, big), 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": 4096}
    # Sent without a length (chunked), the limit holds while reading; nothing is written.
    chunked = api.simulate_post(
        f"{API}/users/import",
        body=big,
        headers={**H(token), "Content-Type": "text/csv", "Transfer-Encoding": "chunked"},
    )
    assert_error(chunked, 413, "PAYLOAD_TOO_LARGE")
    assert "other0@example.com" not in user_emails(api, operator)
    # Every other body keeps the JSON limit.
    padded = {"email": "x@example.com", "first_name": "x" * 100, "last_name": "y" * 1000}
    assert_error(
        api.simulate_post(f"{API}/users", json=padded, headers=H(token)), 413, "PAYLOAD_TOO_LARGE"
    )


# ---- export ---------------------------------------------------------------------------


@pytest.fixture
def population(api, admin, operator, ctx):
    """Users whose export is not trivial: formulas, quotes, non-ASCII, a deleted one."""
    users = api.services.users
    users.create(
        operator,
        ctx,
        {
            "email": "c@example.com",
            "username": "-dash",
            "first_name": "=1+2",
            "last_name": 'O"Hara, Jr; Esq',
            "roles": ["moderator", "user"],
            "password": STRONG_PASSWORD,
            "profile": {"bio": "line one\nline two ünï", "locale": "fr"},
        },
    )
    gone = users.create(operator, ctx, {"email": "gone@example.com"})
    users.delete(operator, ctx, str(gone.id))
    return admin


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
@pytest.mark.parametrize(
    ("flags", "params"),
    [((), {}), (("--include-deleted",), {"include_deleted": "true"})],
)
def test_export_bytes_equal_the_cli_export(api, population, database_url, fmt, flags, params):
    _, token = population
    exported = api.simulate_get(
        f"{API}/users/export", params={"format": fmt, **params}, headers=H(token)
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == resources_remote.EXPORT_MEDIA[fmt]
    printed = run_cli(database_url, "users", "export", "--format", fmt, *flags)
    assert printed.exit_code == 0
    assert exported.content == printed.stdout_bytes
    assert (b"gone@example.com" in exported.content) == bool(flags)


def test_password_hashes_only_on_request_and_audited_like_the_cli(
    api, population, operator, database_url
):
    admin_id, token = population
    plain = api.simulate_get(f"{API}/users/export", headers=H(token))
    assert b"password_hash" not in plain.content and b"$2b$" not in plain.content
    head = api.simulate_head(
        f"{API}/users/export", params={"include_password_hash": "true"}, headers=H(token)
    )
    assert head.status_code == 200 and head.content == b""
    assert events(api, operator, "users.exported") == []  # nothing left the server
    with_hashes = api.simulate_get(
        f"{API}/users/export",
        params={"include_password_hash": "true"},
        headers={**H(token), "X-Request-ID": "export-0001-abcd"},
    )
    records = [json.loads(line) for line in with_hashes.text.splitlines()]
    assert all(r["password_hash"].startswith("$2b$") for r in records)
    printed = run_cli(database_url, "users", "export", "--include-password-hashes")
    assert printed.stdout_bytes == with_hashes.content
    remote, local = reversed(events(api, operator, "users.exported"))  # newest first
    assert (str(remote.actor_id), remote.request_id) == (admin_id, "export-0001-abcd")
    assert remote.changes == {"include_password_hash": True, "include_deleted": False}
    assert local.actor_label.startswith("cli:") and local.changes == remote.changes


def test_export_refuses_a_bad_format(api, admin):
    _, token = admin
    bad = api.simulate_get(f"{API}/users/export", params={"format": "xml"}, headers=H(token))
    assert "format" in assert_error(bad, 400, "VALIDATION_ERROR")["field_errors"]


def test_export_streams_while_reading(api, admin, operator, ctx, monkeypatch):
    """The first piece leaves before the rest is read: memory does not grow with users."""
    _, token = admin
    for i in range(6):
        api.services.users.create(operator, ctx, {"email": f"u{i}@example.com"})
    read = 0
    real = api.services.transfer.export_users

    def counting(*args, **kwargs):
        def records():
            nonlocal read
            for record in real(*args, **kwargs):
                read += 1
                yield record

        return records()

    monkeypatch.setattr(api.services.transfer, "export_users", counting)
    monkeypatch.setattr(resources_remote, "EXPORT_CHUNK_BYTES", 1)
    environ = testing.create_environ(
        path=f"{API}/users/export", query_string="format=jsonl", headers=H(token)
    )
    started = []
    body = api.app(environ, lambda status, headers, *exc: started.append(status))
    pieces = iter(body)
    first = next(pieces)
    assert started == ["200 OK"]
    assert json.loads(first)["email"] == "root@example.com"
    assert read == 1  # one user read, one sent
    rest = b"".join(pieces)
    assert read == 7 and len((first + rest).splitlines()) == 7


# ---- audit verify, purge ----------------------------------------------------------------


def test_audit_verify_reports_intact_and_broken_chains(api, admin, database_url, backend):
    _, token = admin
    verify = f"{API}/audit/verify"
    ok = api.simulate_post(verify, headers=H(token))
    assert ok.status_code == 200, ok.text
    printed = json.loads(run_cli(database_url, "audit", "verify", "-o", "json").stdout)
    assert ok.json == {**printed, "description": ok.json["description"]}
    assert ok.json["ok"] is True and ok.json["description"].startswith("Audit chain intact")
    head = ok.json["head"]
    held = api.simulate_post(verify, json={"expect_head": head}, headers=H(token))
    assert held.json["ok"] is True
    bad_head = api.simulate_post(verify, json={"expect_head": "nonsense"}, headers=H(token))
    assert "expect_head" in assert_error(bad_head, 400, "VALIDATION_ERROR")["field_errors"]

    engine = create_engine(database_url)
    with engine.begin() as conn:
        if backend == "postgres":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        conn.execute(text("UPDATE audit_events SET action = 'user.forged' WHERE seq = 1"))
    engine.dispose()
    broken = api.simulate_post(verify, headers=H(token))
    assert broken.status_code == 200  # the answer is the report, not an error
    assert broken.json["ok"] is False and broken.json["bad_seq"] == 1
    assert "content does not match its hash" in broken.json["description"]
    cli_broken = run_cli(database_url, "audit", "verify", "-o", "json")
    assert cli_broken.exit_code == 6
    assert json.loads(cli_broken.stdout) == {
        k: v for k, v in broken.json.items() if k != "description"
    }


def test_audit_head_is_what_the_cli_prints(api, admin, database_url):
    _, token = admin
    head = api.simulate_get(f"{API}/audit/head", headers=H(token))
    assert head.status_code == 200, head.text
    printed = run_cli(database_url, "audit", "head", "-o", "json")
    assert head.json == json.loads(printed.stdout)
    assert head.json["head"] == f"{head.json['seq']}:{head.json['hash']}"


def test_purge_counts_per_kind_and_audits(api, admin, user, operator, ctx, database_url):
    admin_id, token = admin
    user_id, _ = user
    api.services.users.send_reset_link(operator, ctx, user_id)
    api.services.users.send_reset_link(operator, ctx, user_id)  # voids the first link
    dry = api.simulate_post(
        f"{API}/maintenance/purge", params={"dry_run": "true"}, headers=H(token)
    )
    assert dry.status_code == 200, dry.text
    printed = json.loads(run_cli(database_url, "tokens", "purge", "--dry-run", "-o", "json").stdout)
    assert dry.json == {
        "dry_run": True,
        "counts": {r["kind"]: r["count"] for r in printed},
        "total": sum(r["count"] for r in printed),
    }
    assert dry.json["counts"]["one_time_tokens"] == 1
    assert events(api, operator, "maintenance.purged") == []
    real = api.simulate_post(
        f"{API}/maintenance/purge", headers={**H(token), "X-Request-ID": "purge-0001-abcd"}
    )
    assert real.json["dry_run"] is False and real.json["counts"]["one_time_tokens"] == 1
    [event] = events(api, operator, "maintenance.purged")
    assert (str(event.actor_id), event.request_id) == (admin_id, "purge-0001-abcd")


# ---- mail -----------------------------------------------------------------------------


@pytest.fixture
def invited(api, operator, ctx):
    """Three queued invitations (users created without a password)."""
    for name in ("inv1", "inv2", "inv3"):
        api.services.users.create(operator, ctx, {"email": f"{name}@example.com"})


def test_mail_list_pages_by_cursor_and_shows_what_the_cli_shows(api, admin, invited, database_url):
    _, token = admin
    listing = api.simulate_get(f"{API}/mail", headers=H(token))
    assert listing.status_code == 200, listing.text
    printed = json.loads(run_cli(database_url, "mail", "list", "-o", "json").stdout)
    assert listing.json["data"] == printed
    assert listing.json["meta"] == {"limit": 100, "next_cursor": None}
    assert "token" not in listing.text and "context" not in listing.text

    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.simulate_get(f"{API}/mail", params=params, headers=H(token)).json
        seen += [m["id"] for m in page["data"]]
        cursor = page["meta"]["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["id"] for m in printed] and len(seen) == 3

    pending = api.simulate_get(f"{API}/mail", params={"status": "sent"}, headers=H(token))
    assert pending.json["data"] == []
    for params, field in (({"cursor": "garbage"}, "cursor"), ({"status": "lost"}, "status")):
        bad = api.simulate_get(f"{API}/mail", params=params, headers=H(token))
        assert field in assert_error(bad, 400, "VALIDATION_ERROR")["field_errors"]


def test_mail_retry_requeues_a_dead_letter_and_audits(api, admin, invited, operator):
    admin_id, token = admin
    [dead, *_] = api.simulate_get(f"{API}/mail", headers=H(token)).json["data"]
    with api.services.db.write() as s:
        s.execute(
            update(MailMessage)
            .where(MailMessage.id == uuid.UUID(dead["id"]))
            .values(status="failed", attempts=8)
        )
    retried = api.simulate_post(
        f"{API}/mail/{dead['id']}/retry", headers={**H(token), "X-Request-ID": "retry-0001-abcd"}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json["status"] == "pending" and retried.json["attempts"] == 0
    [event] = events(api, operator, "mail.retried")
    assert (str(event.actor_id), event.request_id) == (admin_id, "retry-0001-abcd")
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        missing = api.simulate_post(f"{API}/mail/{unknown}/retry", headers=H(token))
        assert_error(missing, 404, "NOT_FOUND")


def test_mail_deliver_sends_what_is_due_and_audits(api, admin, invited, operator):
    admin_id, token = admin
    delivered = api.simulate_post(
        f"{API}/mail/deliver", headers={**H(token), "X-Request-ID": "deliver-0001-abcd"}
    )
    assert delivered.status_code == 200, delivered.text
    assert delivered.json == {"sent": 3, "retried": 0, "failed": 0}
    [event] = events(api, operator, "mail.delivered")
    assert (str(event.actor_id), event.request_id) == (admin_id, "deliver-0001-abcd")
    assert event.changes == {"sent": 3, "retried": 0, "failed": 0}
    again = api.simulate_post(f"{API}/mail/deliver", headers=H(token))
    assert again.json == {"sent": 0, "retried": 0, "failed": 0}
    assert len(events(api, operator, "mail.delivered")) == 1  # an idle run is not an event
    with api.services.db.read() as s:
        statuses = set(s.execute(select(MailMessage.status)).scalars())
    assert statuses == {"sent"}
    [sent, *_] = api.simulate_get(f"{API}/mail", headers=H(token)).json["data"]
    conflict = api.simulate_post(f"{API}/mail/{sent['id']}/retry", headers=H(token))
    assert_error(conflict, 409, "CONFLICT")


# ---- the document -------------------------------------------------------------------------


def test_openapi_documents_the_remote_endpoints(api):
    paths = api.simulate_get("/openapi.json").json["paths"]
    imported = paths[f"{API}/users/import"]["post"]
    assert set(imported["requestBody"]["content"]) == set(resources_remote.UPLOAD_MEDIA)
    assert {p["name"] for p in imported["parameters"]} == {
        "format",
        "on_conflict",
        "dry_run",
        "max_errors",
        "filename",
    }
    assert "bad rows" in imported["responses"]["400"]["description"].lower()
    exported = paths[f"{API}/users/export"]["get"]["responses"]["200"]["content"]
    assert set(exported) == set(resources_remote.EXPORT_MEDIA.values())
    assert exported["application/json"]["schema"]["type"] == "array"
    resolve = {p["name"]: p for p in paths[f"{API}/users/resolve"]["get"]["parameters"]}
    assert resolve["ref"]["required"] is True and resolve["include_deleted"]["required"] is False
    retry = paths[f"{API}/mail/{{mail_id}}/retry"]["post"]
    assert retry["parameters"][0]["description"].startswith("The mail message's id")
    assert set(retry["responses"]) >= {"200", "401", "403", "404", "409"}
    assert "VerifyIn" in str(paths[f"{API}/audit/verify"]["post"]["requestBody"])
    assert paths[f"{API}/info"]["get"]["security"] == [{"bearerAuth": []}]
