"""The user representation carries the core's status; /health/ready asks the health service."""

from __future__ import annotations

from .api_helpers import API, assert_error


def test_every_user_representation_has_its_status(api, admin, operator, ctx):
    _admin_id, token = admin
    uid, user_token = api.make_user(operator, ctx, "ada@example.com")
    headers = api.bearer(token)
    me = api.simulate_get(f"{API}/auth/me", headers=api.bearer(user_token))
    assert me.json["status"] == "unverified"
    locked = api.simulate_post(f"{API}/users/{uid}/lock", headers=headers, json={"minutes": 5})
    assert locked.json["status"] == "locked"
    assert api.simulate_get(f"{API}/users/{uid}", headers=headers).json["status"] == "locked"
    listed = api.simulate_get(f"{API}/users", headers=headers, params={"status": "locked"})
    assert [(u["id"], u["status"]) for u in listed.json["data"]] == [(uid, "locked")]
    unlocked = api.simulate_post(f"{API}/users/{uid}/unlock", headers=headers)
    assert unlocked.json["status"] == "unverified"
    assert api.simulate_delete(f"{API}/users/{uid}", headers=headers).status_code == 204
    gone = api.simulate_get(
        f"{API}/users/{uid}", headers=headers, params={"include_deleted": "true"}
    )
    assert gone.json["status"] == "deleted"


def test_readiness_follows_the_health_service(api, monkeypatch):
    assert api.simulate_get("/health/ready").json["checks"] == {"database": "ok"}
    monkeypatch.setattr(type(api.services.health), "database_ready", lambda self: False)
    error = assert_error(api.simulate_get("/health/ready"), 503, "SERVICE_UNAVAILABLE")
    assert error["details"]["checks"] == {"database": "unavailable"}
