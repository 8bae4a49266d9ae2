"""HEAD on every GET route, found by walking the app's router."""

from __future__ import annotations

from .api_helpers import API


def get_routes(app):
    """(URI template, resource) of every route of ``app`` that has a GET responder."""

    def walk(nodes):
        for node in nodes:
            if node.resource is not None:
                get = node.method_map.get("GET")
                if getattr(get, "__self__", None) is node.resource:  # not Falcon's 405
                    yield node.uri_template, node.resource
            yield from walk(node.children)

    return list(walk(app._router._roots))


def test_head_answers_every_get_route_like_get_without_a_body(api, operator, ctx):
    uid, token = api.make_user(operator, ctx, "root@example.com", roles=("admin",))
    routes = get_routes(api.app)
    templates = {template for template, _ in routes}
    expected = {f"{API}/users", f"{API}/users/{{user_id}}", "/health/ready", "/docs/{name}"}
    assert expected <= templates
    for template, _resource in routes:
        path = template.replace("{user_id}", uid).replace("{name}", "docs.js")
        for headers in (api.bearer(token), {}):  # authorised, and not (401 where needed)
            head = api.simulate_head(path, headers=headers)
            get = api.simulate_get(path, headers=headers)
            assert head.status_code == get.status_code, (path, head.status_code, get.status_code)
            assert head.content == b"", path
            # The account pages hand each visitor a fresh CSRF nonce cookie.
            volatile = {"x-request-id", "set-cookie"}
            if template == "/metrics":  # each request changes the counts, so the length
                volatile.add("content-length")
            elif template == f"{API}/users/export" and get.status_code == 200:
                # Streamed as the users are read: neither answer can know its length.
                assert "content-length" not in get.headers, path
            else:
                assert head.headers["content-length"] == str(len(get.content)), path
            same = {k: v for k, v in head.headers.items() if k.lower() not in volatile}
            assert same == {k: v for k, v in get.headers.items() if k.lower() not in volatile}
    assert api.simulate_head(f"{API}/users", headers=api.bearer(token)).status_code == 200
    assert api.simulate_head(f"{API}/users").status_code == 401
    # A route without GET has no HEAD either.
    assert api.simulate_head(f"{API}/auth/login").status_code == 405
