"""Webhooks from every face: the API and CLI manage them, and every face's changes emit events."""

from __future__ import annotations

import json

from falcon import testing

from usermgmt.api.app import create_app
from usermgmt.tui.app import UserMgmtApp

from .receiver import Receiver

STRONG = "Corr3ct-Horse-Battery"
NEW_PASSWORD = "Sec0nd-Horse-Battery"
API = "/api/v1"


def types_for(receiver: Receiver, email: str) -> list[str]:
    """The event types about one user, in the order they arrived (the order is per user:
    events of different users are sent side by side)."""
    return [r.type for r in receiver.received if r.payload["data"]["user"]["email"] == email]


def _client(services):
    return testing.TestClient(create_app(services))


def _token(client, email: str, password: str = STRONG) -> dict[str, str]:
    result = client.simulate_post(f"{API}/auth/login", json={"email": email, "password": password})
    assert result.status_code == 200, result.text
    return {"Authorization": f"Bearer {result.json['tokens']['access_token']}"}


def test_the_api_manages_webhooks_and_its_changes_are_delivered(
    hook_services, receiver: Receiver, operator, ctx
):
    svc = hook_services
    svc.users.create(operator, ctx, {"email": "root@example.com", "password": STRONG,
                                     "roles": ["admin"]})  # fmt: skip
    client = _client(svc)
    admin = _token(client, "root@example.com")
    made = client.simulate_post(
        f"{API}/webhooks", headers=admin,
        json={"url": receiver.url, "events": ["*"], "description": "crm"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    assert made.headers["Cache-Control"] == "no-store"
    secret = receiver.secret = made.json["secret"]
    wid = made.json["webhook"]["id"]
    assert secret.startswith("whsec_") and made.headers["Location"].endswith(wid)
    listed = client.simulate_get(f"{API}/webhooks", headers=admin)
    assert listed.json["data"][0]["description"] == "crm" and secret not in listed.text
    assert secret not in client.simulate_get(f"{API}/webhooks/{wid}", headers=admin).text

    created = client.simulate_post(
        f"{API}/users", headers=admin, json={"email": "ann@example.com", "password": STRONG}
    )
    uid = created.json["id"]
    steps = [
        ("patch", f"/users/{uid}", {"first_name": "Ann"}),
        ("put", f"/users/{uid}/roles", {"roles": ["moderator"]}),
        ("post", f"/users/{uid}/lock", None),
        ("post", f"/users/{uid}/unlock", None),
        ("delete", f"/users/{uid}/sessions", None),
        ("delete", f"/users/{uid}", None),
        ("post", f"/users/{uid}/restore", None),
    ]
    for method, path, body in steps:
        result = getattr(client, f"simulate_{method}")(f"{API}{path}", headers=admin, json=body)
        assert result.status_code < 300, (path, result.text)
    own = _token(client, "ann@example.com")
    changed = client.simulate_post(
        f"{API}/auth/change-password", headers=own,
        json={"current_password": STRONG, "new_password": NEW_PASSWORD},
    )  # fmt: skip
    assert changed.status_code < 300, changed.text
    registered = client.simulate_post(
        f"{API}/auth/register", json={"email": "self@example.com", "password": STRONG}
    )
    assert registered.status_code == 201
    svc.webhooks.deliver_pending()
    assert types_for(receiver, "ann@example.com") == [
        "user.created", "user.updated", "user.roles_changed", "user.locked", "user.unlocked",
        "session.revoked", "user.deleted", "user.restored", "user.password_changed",
    ]  # fmt: skip
    assert types_for(receiver, "self@example.com") == ["user.created"]
    assert all(r.signature_ok for r in receiver.received)

    page = client.simulate_get(
        f"{API}/webhooks/{wid}/deliveries", headers=admin, params={"status": "delivered"}
    )
    assert page.status_code == 200 and page.json["meta"]["total"] == 10
    first = page.json["data"][-1]
    assert (first["event_type"], first["attempts"], first["last_status_code"]) == (
        "user.created", 1, 204,
    )  # fmt: skip
    assert first["latency_ms"] is not None
    test = client.simulate_post(f"{API}/webhooks/{wid}/test", headers=admin)
    assert test.status_code == 202 and test.json["event_type"] == "webhook.test"
    retry = client.simulate_post(f"{API}/webhook-deliveries/{first['id']}/retry", headers=admin)
    assert retry.status_code == 202 and retry.json["status"] == "pending"
    svc.webhooks.deliver_pending()
    assert sorted(r.type for r in receiver.received[-2:]) == ["user.created", "webhook.test"]
    replay = client.simulate_post(
        f"{API}/webhooks/{wid}/replay", headers=admin, json={"since": "2000-01-01T00:00:00Z"}
    )
    assert replay.status_code == 202 and replay.json["replayed"] == 11
    paused = client.simulate_patch(f"{API}/webhooks/{wid}", headers=admin, json={"enabled": False})
    assert paused.json["enabled"] is False
    assert client.simulate_post(f"{API}/webhooks/{wid}/test", headers=admin).status_code == 409
    assert client.simulate_delete(f"{API}/webhooks/{wid}", headers=admin).status_code == 204
    assert client.simulate_get(f"{API}/webhooks/{wid}", headers=admin).status_code == 404
    assert client.simulate_get(f"{API}/webhooks", headers=own).status_code == 403


def test_the_api_refuses_private_and_malformed_targets(make_services, operator, ctx):
    svc = make_services()
    svc.users.create(operator, ctx, {"email": "root@example.com", "password": STRONG,
                                     "roles": ["admin"]})  # fmt: skip
    client = _client(svc)
    admin = _token(client, "root@example.com")
    for body in (
        {"url": "http://127.0.0.1:8080/hooks", "events": ["*"]},
        {"url": "http://169.254.169.254/", "events": ["user.created"]},
        {"url": "https://example.com/hooks", "events": ["user.exploded"]},
        {"url": "https://example.com/hooks", "events": []},
    ):
        result = client.simulate_post(f"{API}/webhooks", headers=admin, json=body)
        assert result.status_code == 400, result.text
        assert result.json["error"]["code"] == "VALIDATION_ERROR"
    assert client.simulate_get(f"{API}/webhooks", headers=admin).json["data"] == []


def test_the_cli_manages_webhooks_and_its_changes_are_delivered(
    cli, hook_services, receiver: Receiver, tmp_path
):
    made = cli("webhooks", "create", "--url", receiver.url, "--event", "*", "-o", "json")
    assert made.exit_code == 0, made.stderr
    record = made.json()
    receiver.secret = record["secret"]
    wid = record["id"]
    listed = cli("webhooks", "list", "-o", "json")
    assert record["secret"] not in listed.stdout and listed.json()[0]["id"] == wid
    created = cli("users", "create", "--email", "cli@example.com", "--no-password", "-o", "json")
    uid = created.json()["id"]
    for args in (
        ("users", "update", uid, "--first-name", "Cleo"),
        ("users", "lock", uid),
        ("users", "unlock", uid),
        ("roles", "grant", uid, "moderator"),
        ("users", "delete", uid, "--yes"),
        ("users", "restore", uid),
    ):
        run = cli(*args)
        assert run.exit_code == 0, (args, run.stderr)
    run = cli("users", "set-password", uid, "--password-stdin", input=NEW_PASSWORD + "\n")
    assert run.exit_code == 0, run.stderr
    people = tmp_path / "people.csv"
    people.write_text("email,first_name\nimp1@example.com,I\nimp2@example.com,J\n")
    assert cli("users", "import", str(people)).exit_code == 0
    delivered = cli("webhooks", "deliver", "-o", "json")
    assert delivered.exit_code == 0 and delivered.json()["delivered"] == 10
    assert types_for(receiver, "cli@example.com") == [
        "user.created", "user.updated", "user.locked", "user.unlocked", "user.roles_changed",
        "user.deleted", "user.restored", "user.password_changed",
    ]  # fmt: skip
    assert types_for(receiver, "imp1@example.com") == types_for(receiver, "imp2@example.com")
    assert types_for(receiver, "imp1@example.com") == ["user.created"]
    assert all(r.signature_ok for r in receiver.received)

    failed = cli("webhooks", "deliveries", wid, "--status", "failed", "-o", "json")
    assert failed.exit_code == 0 and failed.json() == []
    rows = cli("webhooks", "deliveries", wid, "-o", "json").json()
    assert len(rows) == 10 and {r["status"] for r in rows} == {"delivered"}
    table = cli("webhooks", "deliveries", wid)
    assert "user.created" in table.stdout and "204" in table.stdout
    assert cli("webhooks", "test", wid).exit_code == 0
    assert cli("webhooks", "retry", rows[0]["id"]).exit_code == 0
    replay = cli("webhooks", "replay", wid, "--since", "2000-01-01T00:00:00Z", "-o", "json")
    assert replay.exit_code == 0 and replay.json()["replayed"] == 9
    assert cli("webhooks", "deliver").exit_code == 0
    assert len(receiver.received) == 10 + 1 + 1 + 9
    shown = cli("webhooks", "show", wid, "-o", "json").json()
    assert shown["enabled"] is True and "secret" not in json.dumps(shown)
    off = cli("webhooks", "update", wid, "--disable", "-o", "json")
    assert off.exit_code == 0 and off.json()["enabled"] is False
    bad = cli("webhooks", "replay", wid, "--since", "yesterday")
    assert bad.exit_code == 2 and "RFC 3339" in bad.stderr
    assert cli("webhooks", "delete", wid).exit_code == 0
    assert cli("webhooks", "show", wid).exit_code == 3


def test_the_cli_refuses_a_private_target_without_the_setting(cli, monkeypatch):
    monkeypatch.delenv("USERMGMT_WEBHOOK_ALLOW_PRIVATE", raising=False)
    run = cli("webhooks", "create", "--url", "http://127.0.0.1:9/hooks", "--event", "*")
    assert run.exit_code == 2
    assert "USERMGMT_WEBHOOK_ALLOW_PRIVATE" in run.stderr and "Traceback" not in run.stderr
    assert cli("webhooks", "create", "--url", "https://example.com/h").exit_code == 2


def test_a_change_made_in_the_console_is_delivered(
    hook_services, subscribe, receiver, operator, ctx
):
    from tui.tui_helpers import run_console, settle

    svc = hook_services
    user = svc.users.create(operator, ctx, {"email": "tui@example.com", "password": STRONG})
    subscribe()
    app = UserMgmtApp(svc, os_user="tester", retry_delays=(0.05,), search_debounce=0.01)

    async def scenario(pilot):
        await pilot.press("d", "y")
        await settle(pilot)

    run_console(app, scenario)
    svc.webhooks.deliver_pending()
    [event] = receiver.received
    assert event.type == "user.deleted" and event.payload["data"]["user"]["id"] == str(user.id)
    assert event.signature_ok


def test_the_console_lists_creates_toggles_and_retries_webhooks(
    hook_services, receiver, operator, ctx
):
    from tui.tui_helpers import run_console, settle, toasts, wait_until

    from usermgmt.tui.screens.message import MessageScreen
    from usermgmt.tui.screens.webhooks import WebhookFormScreen, WebhooksScreen

    svc = hook_services
    app = UserMgmtApp(svc, os_user="tester", retry_delays=(0.05,), search_debounce=0.01)
    shown: dict[str, str] = {}

    async def scenario(pilot):
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, WebhooksScreen)
        await pilot.press("n")
        assert isinstance(app.screen, WebhookFormScreen)
        app.screen.query_one("#in-url").value = "http://127.0.0.1:9/h ook"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, WebhookFormScreen)  # refused: stays, says why
        assert app.screen.query_one("#field-url").error
        app.screen.query_one("#in-url").value = receiver.url
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageScreen), "the secret")
        message = app.screen.message
        shown["secret"] = message.split()[-1]
        await pilot.press("escape")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, WebhooksScreen)
        await wait_until(pilot, lambda: len(screen.webhooks) == 1, "the new webhook")
        # A change made meanwhile fails once; its delivery is retried from here.
        receiver.secret = shown["secret"]
        receiver.status = 500
        svc.users.create(operator, ctx, {"email": "tu@example.com", "password": STRONG})
        svc.webhooks.deliver_pending(limit=1)
        receiver.status = 204
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(screen.deliveries) == 1, "the delivery")
        assert screen.deliveries[0].attempts == 1
        await pilot.press("tab", "r")
        await settle(pilot)
        await pilot.press("tab", "e")
        await wait_until(pilot, lambda: not screen.webhooks[0].enabled, "disabled")
        await pilot.press("e")
        await wait_until(pilot, lambda: screen.webhooks[0].enabled, "enabled again")
        await pilot.press("t")
        await settle(pilot)
        assert any("Test event" in t for t in toasts(app))

    run_console(app, scenario)
    assert shown["secret"].startswith("whsec_")
    svc.webhooks.deliver_pending()
    assert sorted(r.type for r in receiver.received) == [
        "user.created", "user.created", "webhook.test",
    ]  # fmt: skip
    assert all(r.signature_ok for r in receiver.received)
