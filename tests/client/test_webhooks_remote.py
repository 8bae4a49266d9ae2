"""`usermgmt webhooks …` the same embedded and remote (against a live server): the
WebhooksPort of both backends, the permission check and the command that needs the database."""

from __future__ import annotations

from usermgmt.cli.errors import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE

# A public address literal: accepted without a DNS lookup, never contacted (no delivery runs).
URL = "https://93.184.215.14/hooks"


def test_subscriptions_and_deliveries_round_trip(run):
    created = run("webhooks", "create", "--url", URL, "--event", "user.created", "-o", "json")
    assert created.exit_code == 0, created.stderr
    hook = created.json()
    wid = hook["id"]
    assert hook["secret"].startswith("whsec_") and hook["events"] == ["user.created"]

    listed = run("webhooks", "list", "-o", "json")
    assert wid in [w["id"] for w in listed.json()]
    assert "secret" not in listed.stdout and hook["secret"] not in listed.stdout
    assert run("webhooks", "show", wid, "-o", "json").json()["url"] == URL

    paused = run("webhooks", "update", wid, "--disable", "--description", "crm", "-o", "json")
    assert (paused.json()["enabled"], paused.json()["description"]) == (False, "crm")
    assert run("webhooks", "test", wid).exit_code == EXIT_CONFLICT  # disabled
    assert run("webhooks", "update", wid, "--enable", "-o", "json").json()["enabled"]

    queued = run("webhooks", "test", wid, "-o", "json").json()
    assert queued["event_type"] == "webhook.test" and queued["status"] == "pending"
    page = run("webhooks", "deliveries", wid, "--status", "pending", "-o", "json").json()
    assert [d["id"] for d in page] == [queued["id"]]
    assert run("webhooks", "retry", queued["id"], "-o", "json").json()["attempts"] == 0
    replayed = run("webhooks", "replay", wid, "--since", "2020-01-01T00:00:00Z", "-o", "json")
    assert replayed.json() == {"replayed": 0}  # the only event is still pending

    assert run("webhooks", "delete", wid).exit_code == 0
    assert run("webhooks", "show", wid).exit_code == EXIT_NOT_FOUND
    assert run("webhooks", "show", "not-a-uuid").exit_code == EXIT_NOT_FOUND
    assert run("webhooks", "retry", "../users").exit_code == EXIT_NOT_FOUND


def test_a_bad_subscription_is_refused_the_same_way(embedded, as_admin):
    args = ("webhooks", "create", "--url", "ftp://example.com/x", "--event", "*", "-o", "json")
    local, remote = embedded(*args), as_admin(*args)
    assert local.exit_code == remote.exit_code != 0
    assert "url" in local.stderr and "url" in remote.stderr


def test_a_moderator_may_not_manage_webhooks_remotely(as_moderator):
    assert as_moderator("webhooks", "list").exit_code == EXIT_REFUSED


def test_sending_needs_the_database(as_admin):
    sent = as_admin("webhooks", "deliver")
    assert sent.exit_code == EXIT_USAGE
    assert "--database-url" in sent.stderr
