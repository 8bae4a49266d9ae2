"""GET /api/v1/users sorted by name and by status, paged by cursor."""

from __future__ import annotations

from .api_helpers import API


def test_sort_by_name_and_status_pages_by_cursor(api, admin, operator, ctx):
    _, token = admin  # "root@example.com", no name
    for first in ("bea", "Al", "cy"):
        api.services.users.create(
            operator, ctx, {"email": f"{first}@example.com", "first_name": first}
        )
    auth = api.bearer(token)

    def walk(sort: str) -> list[str]:
        params = {"sort": sort, "limit": 2}
        seen, cursor = [], None
        while True:
            page = api.simulate_get(
                f"{API}/users",
                headers=auth,
                params={**params, **({"cursor": cursor} if cursor else {})},
            )
            assert page.status_code == 200, page.text
            seen += [u["email"] for u in page.json["data"]]
            cursor = page.json["meta"]["next_cursor"]
            if not cursor:
                return seen

    by_name = ["root@example.com", "al@example.com", "bea@example.com", "cy@example.com"]
    assert walk("name") == by_name
    assert walk("-name") == by_name[::-1]
    locked = api.services.user_reads.find(operator, "cy@example.com")
    api.services.users.lock(operator, ctx, str(locked.id))
    found = api.simulate_get(f"{API}/users", headers=auth, params={"sort": "status"})
    assert [u["status"] for u in found.json["data"]] == ["locked"] + ["unverified"] * 3
    assert found.json["data"][0]["email"] == "cy@example.com"
