"""Users, roles, sessions and audit endpoints: the permission matrix and each operation."""

from __future__ import annotations

import uuid

from .api_helpers import API, STRONG_PASSWORD, assert_error


def test_anonymous_gets_401_everywhere_a_user_is_needed(api, user):
    uid, _ = user
    for method, path in [
        ("GET", f"{API}/users"),
        ("POST", f"{API}/users"),
        ("GET", f"{API}/users/{uid}"),
        ("PATCH", f"{API}/users/{uid}"),
        ("DELETE", f"{API}/users/{uid}"),
        ("PUT", f"{API}/users/{uid}/roles"),
        ("GET", f"{API}/users/{uid}/sessions"),
        ("GET", f"{API}/audit"),
        ("GET", f"{API}/roles"),
        ("GET", f"{API}/auth/me"),
    ]:
        result = api.simulate_request(method, path)
        assert_error(result, 401, "UNAUTHORIZED")
        assert result.headers["WWW-Authenticate"] == "Bearer"
    bad = api.simulate_get(f"{API}/auth/me", headers={"Authorization": "Basic abc"})
    assert_error(bad, 401, "UNAUTHORIZED")
    forged = api.simulate_get(f"{API}/auth/me", headers=api.bearer("a.b.c"))
    assert_error(forged, 401, "UNAUTHORIZED")


def test_user_reads_and_edits_only_self(api, user, moderator, admin):
    uid, token = user
    mod_id, _ = moderator
    own = api.simulate_get(f"{API}/users/{uid}", headers=api.bearer(token))
    assert own.status_code == 200
    assert own.json["email"] == "ada@example.com"
    assert_error(
        api.simulate_get(f"{API}/users/{mod_id}", headers=api.bearer(token)), 403, "FORBIDDEN"
    )
    assert_error(api.simulate_get(f"{API}/users", headers=api.bearer(token)), 403, "FORBIDDEN")
    patched = api.simulate_patch(
        f"{API}/users/{uid}", headers=api.bearer(token), json={"last_name": "Lovelace"}
    )
    assert patched.status_code == 200
    assert patched.json["last_name"] == "Lovelace"
    for field in ({"email": "x@example.com"}, {"is_active": False}, {"roles": ["admin"]}):
        refused = api.simulate_patch(f"{API}/users/{uid}", headers=api.bearer(token), json=field)
        assert_error(refused, 400, "VALIDATION_ERROR")
    assert_error(
        api.simulate_post(
            f"{API}/users", headers=api.bearer(token), json={"email": "n@example.com"}
        ),
        403,
        "FORBIDDEN",
    )


def test_moderator_reads_all_and_edits_non_admins(api, user, moderator, admin):
    uid, _ = user
    admin_id, _ = admin
    _, mod_token = moderator
    listing = api.simulate_get(f"{API}/users", headers=api.bearer(mod_token))
    assert listing.status_code == 200
    assert listing.json["meta"]["total"] == 3
    edited = api.simulate_patch(
        f"{API}/users/{uid}", headers=api.bearer(mod_token), json={"is_active": False}
    )
    assert edited.status_code == 200 and edited.json["is_active"] is False
    assert_error(
        api.simulate_patch(
            f"{API}/users/{admin_id}", headers=api.bearer(mod_token), json={"first_name": "X"}
        ),
        403,
        "FORBIDDEN",
    )
    assert_error(
        api.simulate_put(
            f"{API}/users/{uid}/roles", headers=api.bearer(mod_token), json={"roles": ["admin"]}
        ),
        403,
        "FORBIDDEN",
    )
    assert_error(api.simulate_get(f"{API}/audit", headers=api.bearer(mod_token)), 403, "FORBIDDEN")


def test_list_filters_pages_cursor_and_strict_query(api, admin, operator, ctx):
    _, token = admin
    for i in range(5):
        api.services.users.create(
            operator, ctx, {"email": f"p{i}@example.com", "first_name": f"Pat{i}"}
        )
    auth = api.bearer(token)
    found = api.simulate_get(f"{API}/users", headers=auth, params={"search": "PAT", "limit": 2})
    assert found.status_code == 200, found.text
    meta = found.json["meta"]
    assert (meta["total"], meta["limit"], meta["total_pages"], meta["page"]) == (5, 2, 3, 1)
    seen = [u["email"] for u in found.json["data"]]
    cursor = meta["next_cursor"]
    while cursor:
        page = api.simulate_get(
            f"{API}/users", headers=auth, params={"search": "pat", "limit": 2, "cursor": cursor}
        )
        seen += [u["email"] for u in page.json["data"]]
        cursor = page.json["meta"]["next_cursor"]
    assert sorted(seen) == [f"p{i}@example.com" for i in range(5)]
    by_role = api.simulate_get(f"{API}/users", headers=auth, params={"role": "admin"})
    assert [u["email"] for u in by_role.json["data"]] == ["root@example.com"]
    for bad in ({"limit": 101}, {"limit": 0}, {"page": 0}, {"sort": "password"}, {"status": "x"}):
        assert_error(
            api.simulate_get(f"{API}/users", headers=auth, params=bad), 400, "VALIDATION_ERROR"
        )
    unknown = api.simulate_get(f"{API}/users", headers=auth, params={"colour": "red"})
    assert assert_error(unknown, 400, "VALIDATION_ERROR")["field_errors"] == {
        "colour": ["Unknown or forbidden field"]
    }
    assert_error(
        api.simulate_get(f"{API}/roles", headers=auth, params={"x": "1"}), 400, "VALIDATION_ERROR"
    )


def test_admin_create_get_put_patch_delete_restore(api, admin):
    _, token = admin
    auth = api.bearer(token)
    created = api.simulate_post(
        f"{API}/users",
        headers=auth,
        json={"email": "new@example.com", "password": STRONG_PASSWORD, "roles": ["moderator"]},
    )
    assert created.status_code == 201, created.text
    uid = created.json["id"]
    assert created.headers["Location"] == f"{API}/users/{uid}"
    assert created.json["roles"] == ["moderator"]
    invited = api.simulate_post(f"{API}/users", headers=auth, json={"email": "inv@example.com"})
    assert invited.status_code == 201
    assert_error(
        api.simulate_post(f"{API}/users", headers=auth, json={"email": "NEW@example.com"}),
        409,
        "EMAIL_EXISTS",
    )
    replaced = api.simulate_put(
        f"{API}/users/{uid}", headers=auth, json={"email": "new@example.com", "first_name": "N"}
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json["first_name"] == "N"
    assert_error(
        api.simulate_put(f"{API}/users/{uid}", headers=auth, json={}), 400, "VALIDATION_ERROR"
    )
    patched = api.simulate_patch(f"{API}/users/{uid}", headers=auth, json={"username": "newbie"})
    assert patched.json["username"] == "newbie"

    assert api.simulate_delete(f"{API}/users/{uid}", headers=auth).status_code == 204
    assert_error(api.simulate_get(f"{API}/users/{uid}", headers=auth), 404, "NOT_FOUND")
    deleted = api.simulate_get(
        f"{API}/users/{uid}", headers=auth, params={"include_deleted": "true"}
    )
    assert deleted.status_code == 200 and deleted.json["deleted_at"].endswith("Z")
    listed = api.simulate_get(f"{API}/users", headers=auth, params={"include_deleted": "true"})
    assert uid in [u["id"] for u in listed.json["data"]]
    restored = api.simulate_post(f"{API}/users/{uid}/restore", headers=auth)
    assert restored.status_code == 200 and restored.json["deleted_at"] is None
    assert_error(api.simulate_post(f"{API}/users/{uid}/restore", headers=auth), 409, "CONFLICT")
    for missing in ("not-a-uuid", str(uuid.uuid4())):
        assert_error(api.simulate_get(f"{API}/users/{missing}", headers=auth), 404, "NOT_FOUND")
        assert_error(api.simulate_delete(f"{API}/users/{missing}", headers=auth), 404, "NOT_FOUND")


def test_lock_unlock_roles_and_last_admin(api, admin, user):
    admin_id, token = admin
    uid, user_token = user
    auth = api.bearer(token)
    locked = api.simulate_post(f"{API}/users/{uid}/lock", headers=auth, json={"minutes": 5})
    assert locked.status_code == 200 and locked.json["locked_until"] is not None
    assert_error(
        api.simulate_get(f"{API}/auth/me", headers=api.bearer(user_token)), 401, "UNAUTHORIZED"
    )
    assert_error(api.login("ada@example.com"), 423, "ACCOUNT_LOCKED")
    assert_error(
        api.simulate_post(f"{API}/users/{uid}/lock", headers=auth, json={"minutes": 0}),
        400,
        "VALIDATION_ERROR",
    )
    unlocked = api.simulate_post(f"{API}/users/{uid}/unlock", headers=auth)
    assert unlocked.status_code == 200 and unlocked.json["locked_until"] is None
    assert api.login("ada@example.com").status_code == 200
    assert_error(
        api.simulate_post(f"{API}/users/{uid}/unlock", headers=auth, json={"x": 1}),
        400,
        "VALIDATION_ERROR",
    )

    roles = api.simulate_put(
        f"{API}/users/{uid}/roles", headers=auth, json={"roles": ["moderator"]}
    )
    assert roles.status_code == 200 and roles.json["roles"] == ["moderator"]
    own = api.simulate_put(f"{API}/users/{admin_id}/roles", headers=auth, json={"roles": ["user"]})
    assert_error(own, 403, "FORBIDDEN")
    assert_error(api.simulate_delete(f"{API}/users/{admin_id}", headers=auth), 409, "CONFLICT")
    assert_error(
        api.simulate_put(f"{API}/users/{uid}/roles", headers=auth, json={"roles": ["root"]}),
        400,
        "VALIDATION_ERROR",
    )


def test_sessions_list_and_revoke_all(api, admin, user):
    _, token = admin
    uid, user_token = user
    auth = api.bearer(token)
    sessions = api.simulate_get(f"{API}/users/{uid}/sessions", headers=auth)
    assert sessions.status_code == 200
    assert len(sessions.json["data"]) == 1
    assert sessions.json["data"][0]["ip"] == "127.0.0.1"
    assert api.simulate_delete(f"{API}/users/{uid}/sessions", headers=auth).status_code == 204
    assert_error(
        api.simulate_get(f"{API}/auth/me", headers=api.bearer(user_token)), 401, "UNAUTHORIZED"
    )
    assert api.simulate_get(f"{API}/users/{uid}/sessions", headers=auth).json["data"] == []


def test_role_change_takes_effect_on_next_request(api, admin, user):
    _, token = admin
    uid, user_token = user
    api.simulate_put(
        f"{API}/users/{uid}/roles", headers=api.bearer(token), json={"roles": ["moderator"]}
    )
    listing = api.simulate_get(f"{API}/users", headers=api.bearer(user_token))
    assert listing.status_code == 200


def test_audit_and_roles(api, admin, user):
    _, token = admin
    auth = api.bearer(token)
    oldest = api.simulate_get(f"{API}/audit", headers=auth, params={"order": "oldest", "limit": 1})
    assert oldest.status_code == 200, oldest.text
    assert oldest.json["data"][0]["seq"] == 1 and oldest.json["meta"]["next_cursor"] == "1"
    page = api.simulate_get(f"{API}/audit", headers=auth, params={"action": "user.*", "limit": 1})
    assert page.status_code == 200, page.text
    events = page.json["data"]
    assert len(events) == 1 and events[0]["action"].startswith("user.")
    assert {
        "id",
        "at",
        "action",
        "actor_id",
        "actor_label",
        "target_id",
        "ip",
        "request_id",
        "changes",
        "prev_hash",
        "hash",
    } <= set(events[0])
    cursor = page.json["meta"]["next_cursor"]
    assert cursor
    nxt = api.simulate_get(
        f"{API}/audit", headers=auth, params={"action": "user.*", "limit": 1, "cursor": cursor}
    )
    assert nxt.status_code == 200
    assert nxt.json["data"][0]["id"] != events[0]["id"]
    assert_error(
        api.simulate_get(f"{API}/audit", headers=auth, params={"since": "yesterday"}),
        400,
        "VALIDATION_ERROR",
    )
    labels = {e["actor_label"] for e in api.simulate_get(f"{API}/audit", headers=auth).json["data"]}
    for label in labels:  # operators (no actor_id) are found by label
        by_label = api.simulate_get(f"{API}/audit", headers=auth, params={"actor_label": label})
        assert {e["actor_label"] for e in by_label.json["data"]} == {label}
    roles = api.simulate_get(f"{API}/roles", headers=auth)
    assert [r["name"] for r in roles.json["data"]] == ["admin", "moderator", "user"]


def test_audit_records_request_id_and_ip(api, admin):
    _, token = admin
    api.simulate_post(
        f"{API}/users",
        headers={**api.bearer(token), "X-Request-ID": "trace-0001-abcd"},
        json={"email": "traced@example.com"},
    )
    events = api.simulate_get(
        f"{API}/audit", headers=api.bearer(token), params={"action": "user.created", "limit": 1}
    ).json["data"]
    assert events[0]["request_id"] == "trace-0001-abcd"
    assert events[0]["ip"] == "127.0.0.1"


def test_nul_characters_are_refused_as_invalid_input(api, admin):
    """A NUL in any text field or query is a 400 naming the field, not a database error
    (PostgreSQL text cannot hold one, and SQLite's driver refuses one in a statement)."""
    _, token = admin
    auth = api.bearer(token)
    for term in ("\x00", "ada\x00", "lov\x00elace"):
        refused = api.simulate_get(f"{API}/users", headers=auth, params={"search": term})
        assert "search" in assert_error(refused, 400, "VALIDATION_ERROR")["field_errors"]
    for body, field in (
        ({"email": "n@example.com", "first_name": "N\x00"}, "first_name"),
        ({"email": "n@example.com", "profile": {"bio": "a\x00b"}}, "profile.bio"),
        ({"email": "n@example.com", "password": "Corr3ct-Horse\x00Battery"}, "password"),
    ):
        refused = api.simulate_post(f"{API}/users", headers=auth, json=body)
        assert field in assert_error(refused, 400, "VALIDATION_ERROR")["field_errors"]
    found = api.simulate_get(f"{API}/users", headers=auth, params={"search": "n@example"})
    assert found.json["meta"]["total"] == 0
