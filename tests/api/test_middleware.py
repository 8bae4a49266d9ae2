"""Error bodies everywhere, strict JSON, limits, headers, CORS, proxies, rate limits, logs.

Covers usermgmt.api.middleware, with the error bodies (errors), request bodies (jsonio)
and in-process rate limits (ratelimit) the middleware applies.
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from sqlalchemy import event

from usermgmt.api.app import create_app
from usermgmt.api.middleware import ClientIpResolver

from .api_helpers import API, STRONG_PASSWORD, Api, assert_error


def test_falcon_own_errors_have_the_contract_body(api):
    assert_error(api.simulate_get("/nope"), 404, "NOT_FOUND")
    result = api.simulate_request("TRACE", f"{API}/auth/login")
    assert_error(result, 405, "METHOD_NOT_ALLOWED")
    assert_error(api.simulate_delete("/health"), 405, "METHOD_NOT_ALLOWED")
    assert_error(api.simulate_get("/docs/secret.txt"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"email": "a@example.com", "password": ', "Malformed JSON"),
        ('["not", "an", "object"]', "must be a JSON object"),
        ('{"email": NaN, "password": "x"}', "NaN"),
        ('{"email": Infinity, "password": "x"}', "Infinity"),
        ('{"email": "a@example.com", "email": "b@example.com", "password": "x"}', "duplicate"),
        ('{"a": ' * 40 + "1" + "}" * 40, "nested"),
        ("[" * 20000 + "]" * 20000, "nested"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
)
def test_strict_json(api, body, reason):
    result = api.simulate_post(
        f"{API}/auth/login", body=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error(result, 400, "VALIDATION_ERROR")
    assert reason in error["message"]


def test_json_only_and_body_limit(make_api):
    api = make_api(max_body_bytes=2048)
    text = api.simulate_post(
        f"{API}/auth/login",
        body="email=a",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(text, 415, "UNSUPPORTED_MEDIA_TYPE")
    missing = api.simulate_post(f"{API}/auth/login", body='{"email": "a"}')
    assert_error(missing, 415, "UNSUPPORTED_MEDIA_TYPE")
    latin = api.simulate_post(
        f"{API}/auth/login",
        body="{}",
        headers={"Content-Type": "application/json; charset=latin-1"},
    )
    assert_error(latin, 415, "UNSUPPORTED_MEDIA_TYPE")
    big = json.dumps({"email": "a@example.com", "password": "x" * 3000})
    too_large = api.simulate_post(
        f"{API}/auth/login", body=big, headers={"Content-Type": "application/json"}
    )
    error = assert_error(too_large, 413, "PAYLOAD_TOO_LARGE")
    assert error["details"] == {"max_bytes": 2048}
    # Refused before routing too, from the declared length alone.
    assert_error(
        api.simulate_post("/nowhere", body=big, headers={"Content-Type": "application/json"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    # A POST that takes no body works without one, and refuses fields.
    _, token = api.make_user(*_op_ctx(), "b@example.com")
    resend = api.simulate_post(f"{API}/auth/resend-verification", headers=api.bearer(token))
    assert resend.status_code == 202
    refused = api.simulate_post(
        f"{API}/auth/resend-verification", headers=api.bearer(token), json={"email": "x"}
    )
    assert_error(refused, 400, "VALIDATION_ERROR")


def _op_ctx():
    from usermgmt.core.context import Actor, RequestContext

    return Actor.operator("cli", "tester"), RequestContext(ip="127.0.0.1")


def test_500_is_logged_with_request_id_and_leaks_nothing(api, caplog, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("secret internals: SELECT password_hash FROM users")

    monkeypatch.setattr(api.services.auth, "forgot_password", explode)
    with caplog.at_level(logging.ERROR, logger="usermgmt.api"):
        result = api.simulate_post(
            f"{API}/auth/forgot-password",
            json={"email": "a@example.com"},
            headers={"X-Request-ID": "req-500-test-id"},
        )
    error = assert_error(result, 500, "INTERNAL_ERROR")
    assert error["request_id"] == "req-500-test-id"
    assert "secret" not in result.text and "SELECT" not in result.text
    records = [r for r in caplog.records if r.name == "usermgmt.api"]
    assert records and records[0].request_id == "req-500-test-id"
    assert records[0].exc_info is not None


def test_request_id_echoed_when_sane_else_generated(api):
    echoed = api.simulate_get("/health", headers={"X-Request-ID": "abc-123-def-456"})
    assert echoed.headers["X-Request-ID"] == "abc-123-def-456"
    for insane in ("x", "has spaces in it", "a" * 65, "<script>alert(1)</script>"):
        result = api.simulate_get("/health", headers={"X-Request-ID": insane})
        assert result.headers["X-Request-ID"] != insane
        assert len(result.headers["X-Request-ID"]) == 32


def test_security_headers_and_no_cors_by_default(api):
    result = api.simulate_get("/health", headers={"Origin": "https://evil.example"})
    assert result.headers["X-Content-Type-Options"] == "nosniff"
    assert result.headers["X-Frame-Options"] == "DENY"
    assert result.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in result.headers["Content-Security-Policy"]
    assert "Access-Control-Allow-Origin" not in result.headers
    api_resp = api.simulate_get(f"{API}/roles")
    assert api_resp.headers["Cache-Control"] == "no-store"
    assert "Strict-Transport-Security" not in result.headers
    https = api.simulate_get("/health", protocol="https")
    assert https.headers["Strict-Transport-Security"].startswith("max-age=")
    # X-Forwarded-Proto counts only from a trusted proxy.
    spoofed = api.simulate_get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in spoofed.headers


def test_cors_when_configured(make_api):
    api = make_api(cors_origins="https://app.example, https://admin.example")
    allowed = api.simulate_get("/health", headers={"Origin": "https://app.example"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "X-Request-ID" in allowed.headers["Access-Control-Expose-Headers"]
    other = api.simulate_get("/health", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = api.simulate_options(
        f"{API}/users",
        headers={
            "Origin": "https://admin.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://admin.example"


def test_client_ip_resolution():
    none = ClientIpResolver([])
    assert none.resolve("10.0.0.5", "1.2.3.4") == "10.0.0.5"
    trusted = ClientIpResolver(["10.0.0.0/8", "192.168.1.1"])
    assert trusted.resolve("10.0.0.5", "1.2.3.4") == "1.2.3.4"
    # Rightmost untrusted hop wins; a client cannot spoof by prepending.
    assert trusted.resolve("10.0.0.5", "6.6.6.6, 1.2.3.4, 192.168.1.1") == "1.2.3.4"
    # An untrusted peer's header is ignored.
    assert trusted.resolve("8.8.8.8", "1.2.3.4") == "8.8.8.8"
    assert trusted.resolve("10.0.0.5", "garbage") == "10.0.0.5"
    assert trusted.resolve("10.0.0.5", "[2001:db8::1]:443") == "2001:db8::1"


def test_trusted_proxy_ip_reaches_the_session(make_api, operator, ctx):
    api = make_api(trusted_proxies="127.0.0.1")
    proxied = api.simulate_get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" in proxied.headers
    api.make_user(operator, ctx, "p@example.com")
    login = api.login("p@example.com", headers={"X-Forwarded-For": "203.0.113.9"})
    uid = login.json["user"]["id"]
    sessions = api.services.sessions.list(operator, uid)
    assert "203.0.113.9" in [s.ip for s in sessions]


def test_rate_limits_with_retry_after(make_api, operator, ctx):
    api = make_api(rate_limit_login="3/minute", rate_limit_auth="2/minute")
    api.make_user(operator, ctx, "rl@example.com")  # its login is the first hit
    for _ in range(2):
        assert api.login("rl@example.com", "Wrong-Passw0rd").status_code == 401
    limited = api.login("rl@example.com")
    assert_error(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another client IP is not affected.
    assert api.login("rl@example.com", remote_addr="198.51.100.7").status_code == 200
    for _ in range(2):
        api.simulate_post(f"{API}/auth/forgot-password", json={"email": "rl@example.com"})
    forgot = api.simulate_post(f"{API}/auth/forgot-password", json={"email": "rl@example.com"})
    assert_error(forgot, 429, "RATE_LIMITED")
    assert 'usermgmt_rate_limited_total{limit="login"} 1.0' in api.simulate_get("/metrics").text
    # Each endpoint has its own bucket.
    refresh = api.simulate_post(f"{API}/auth/refresh", json={"refresh_token": "x"})
    assert_error(refresh, 401, "UNAUTHORIZED")


def test_database_rate_limit_store_is_shared_between_servers(make_services, operator, ctx):
    settings = {"rate_limit_login": "2/minute", "rate_limit_storage": "database"}
    first, second = Api(make_services(**settings)), Api(make_services(**settings))
    assert isinstance(first.app, object)
    assert first.login("x@example.com", "Wrong-Passw0rd").status_code == 401
    assert second.login("x@example.com", "Wrong-Passw0rd").status_code == 401
    assert_error(first.login("x@example.com"), 429, "RATE_LIMITED")
    assert_error(second.login("x@example.com"), 429, "RATE_LIMITED")


def test_bad_rate_limit_storage_is_a_clear_error(make_services):
    from usermgmt.core.errors import ConfigurationError

    services = make_services(rate_limit_storage="nonsense://x")
    with pytest.raises(ConfigurationError, match="USERMGMT_RATE_LIMIT_STORAGE"):
        create_app(services)


def test_access_log_line_has_fields_and_no_secrets(api, caplog):
    api.register("log@example.com")
    with caplog.at_level(logging.INFO, logger="usermgmt.api.access"):
        login = api.simulate_post(
            f"{API}/auth/login",
            json={"email": "log@example.com", "password": STRONG_PASSWORD},
            headers={"X-Request-ID": "log-test-request"},
        )
        token = login.json["tokens"]["access_token"]
        api.simulate_get(
            f"{API}/users", headers=api.bearer(token), params={"search": "hunter2-secret"}
        )
    lines = [r for r in caplog.records if r.name == "usermgmt.api.access"]
    assert len(lines) == 2
    first, second = lines
    assert (first.method, first.route, first.status) == ("POST", f"{API}/auth/login", 200)
    assert first.request_id == "log-test-request"
    assert first.duration_ms >= 0
    assert second.route == f"{API}/users" and second.status == 403
    assert second.user_id == login.json["user"]["id"]
    from usermgmt.api.process import JsonFormatter

    rendered = "\n".join(JsonFormatter().format(r) for r in lines)
    for secret in (STRONG_PASSWORD, token, login.json["tokens"]["refresh_token"], "hunter2"):
        assert secret not in rendered
    assert json.loads(rendered.splitlines()[0])["route"] == f"{API}/auth/login"


def test_metrics_exposition(api):
    api.simulate_get("/health")
    api.simulate_get("/nope")
    text = api.simulate_get("/metrics").text
    assert 'usermgmt_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert "usermgmt_http_request_duration_seconds_bucket" in text
    assert 'usermgmt_http_errors_total{code="NOT_FOUND",status="404"} 1.0' in text
    assert 'usermgmt_logins_total{outcome="success"}' in text


def test_health_endpoints(api):
    health = api.simulate_get("/health")
    assert health.json["status"] == "ok" and health.json["version"]
    assert api.simulate_get("/health/live").status_code == 200
    ready = api.simulate_get("/health/ready")
    assert ready.status_code == 200 and ready.json["ready"] is True


def test_ready_is_503_when_the_database_does_not_answer(api, monkeypatch):
    from usermgmt.core.errors import DatabaseUnavailable

    def down():
        raise DatabaseUnavailable()

    monkeypatch.setattr(api.services.db, "ping", down)
    error = assert_error(api.simulate_get("/health/ready"), 503, "SERVICE_UNAVAILABLE")
    assert error["details"]["ready"] is False


def test_purge_deletes_expired_rate_limit_counters(services, operator, ctx):
    from usermgmt.core.ratelimit_store import DatabaseRateLimitStorage

    store = DatabaseRateLimitStorage(services.db)
    assert store.incr("login/1.2.3.4", 0) == 1  # expires at once
    assert store.incr("login/5.6.7.8", 60) == 1
    assert store.get("login/1.2.3.4") == 0
    assert store.get("login/5.6.7.8") == 1
    report = services.maintenance.purge(operator, ctx)
    assert report.counts["rate_limit_counters"] == 1
    assert store.get("login/5.6.7.8") == 1


def test_each_request_returns_its_read_connection(api, operator, ctx):
    """The token check and the read share one pooled connection, given back every time."""
    uid, token = api.make_user(operator, ctx, "pool@example.com", roles=("admin",))
    pool = api.services.db.engine.pool
    checkouts = []

    def count(*_args):
        checkouts.append(1)

    event.listen(pool, "checkout", count)
    try:
        ok = api.simulate_get(f"{API}/users/{uid}", headers=api.bearer(token))
        assert ok.status_code == 200
        assert len(checkouts) == 1  # one connection for the token check and the read
        assert pool.checkedout() == 0
        for path in (f"{API}/users/{uuid.uuid4()}", f"{API}/users/not-a-uuid", f"{API}/auth/me"):
            api.simulate_get(path, headers=api.bearer(token))
            assert pool.checkedout() == 0
        assert api.simulate_get(f"{API}/auth/me", headers=api.bearer("x.y.z")).status_code == 401
        assert api.simulate_get("/health").status_code == 200
        assert pool.checkedout() == 0
    finally:
        event.remove(pool, "checkout", count)


def test_json_log_lines_carry_time_extras_and_exceptions():
    from usermgmt.api.process import JsonFormatter

    formatter = JsonFormatter()

    def record(created, **extra):
        rec = logging.LogRecord("usermgmt.api.access", logging.INFO, "", 0, "%s!", ("hi",), None)
        rec.created, rec.msecs = created, (created % 1) * 1000
        rec.__dict__.update(extra)
        return rec

    first = json.loads(
        formatter.format(record(86400.25, status=200, _private=1, who=uuid.UUID(int=1)))
    )
    assert first["ts"] == "1970-01-02T00:00:00.250Z"
    assert (first["message"], first["status"], first["who"]) == ("hi!", 200, str(uuid.UUID(int=1)))
    assert "_private" not in first and "lineno" not in first
    # The same second again, then the next: the cached second must not stick.
    assert json.loads(formatter.format(record(86400.5)))["ts"] == "1970-01-02T00:00:00.500Z"
    assert json.loads(formatter.format(record(86401.0)))["ts"] == "1970-01-02T00:00:01.000Z"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        failed = record(86402.0)
        failed.exc_info = sys.exc_info()
    assert "ValueError: boom" in json.loads(formatter.format(failed))["exception"]


def test_metrics_count_every_observation_per_label_set():
    from usermgmt.api.metrics import Metrics

    metrics = Metrics()
    for seconds in (0.001, 0.002, 0.3):
        metrics.observe("GET", "/health", 200, seconds)
    metrics.observe("GET", "/health", 503, 0.01)
    text = metrics.render().decode()
    assert 'usermgmt_http_requests_total{method="GET",route="/health",status="200"} 3.0' in text
    assert 'usermgmt_http_requests_total{method="GET",route="/health",status="503"} 1.0' in text
    count = 'usermgmt_http_request_duration_seconds_count{method="GET",route="/health",'
    assert count + 'status="200"} 3.0' in text
