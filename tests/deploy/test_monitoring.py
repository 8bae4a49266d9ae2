"""The shipped Prometheus rules and Grafana dashboard: valid, unit-tested, and over real metrics.

promtool (Debian's prometheus package) checks the rules and runs their unit
tests (deploy/prometheus/alerts_test.yml); every metric name the rules and the
dashboard use must be one a live server exports at /metrics after some traffic.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .components import DEPLOY, need_binary

RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "usermgmt.json"
# Series Prometheus makes itself, not the application: `up` of each scrape target.
PROMETHEUS_OWN = {"up"}


def promtool(*args: str) -> subprocess.CompletedProcess:
    binary = need_binary("/usr/bin/promtool", "prometheus")
    return subprocess.run(
        [binary, *args], cwd=RULES.parent, capture_output=True, text=True, timeout=120
    )


def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_rules_pass_their_unit_tests():
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def expressions() -> dict[str, list[str]]:
    """Every PromQL expression, by where it is (rule or dashboard panel)."""
    import yaml

    found: dict[str, list[str]] = {}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            found[f"alert {rule['alert']}"] = [rule["expr"]]
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        found[f"panel {panel['title']!r}"] = [t["expr"] for t in panel["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable.get("definition"):
            found[f"variable {variable['name']}"] = [variable["definition"]]
    return found


def metric_names(expr: str) -> set[str]:
    # Label names and values (inside braces) and function names are not metrics.
    stripped = re.sub(r"\{[^}]*\}", "{}", expr)
    stripped = re.sub(r"\b(by|without)\s*\([^)]*\)", "", stripped)
    return set(re.findall(r"\b(?:usermgmt_[a-z0-9_]+|up)\b(?!\s*\()", stripped))


def test_every_panel_and_rule_reads_a_metric():
    for where, exprs in expressions().items():
        assert all(metric_names(e) for e in exprs), where


def exported_after_traffic(server) -> set[str]:
    """Log in wrong (401), locked (423) and too often (429); then scrape."""

    def post(path: str, body: dict) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    attempt = {"email": "someone@example.com", "password": "Wrong-Password-12"}
    statuses = [post("/api/v1/auth/login", attempt) for _ in range(4)]
    assert statuses == [401, 423, 423, 429], statuses
    with urllib.request.urlopen(server.url + "/health/ready", timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return {s.name for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def live_server(serve, database_url):
    return serve(
        database_url,
        env={
            "USERMGMT_LOCKOUT_THRESHOLD": "2",
            "USERMGMT_RATE_LIMIT_LOGIN": "3/minute",
            "USERMGMT_RATE_LIMIT_AUTH": "off",
        },
    )


def test_every_metric_the_rules_and_the_dashboard_use_is_exported(live_server):
    exported = exported_after_traffic(live_server)
    used = {name for exprs in expressions().values() for e in exprs for name in metric_names(e)}
    assert "usermgmt_http_request_duration_seconds_bucket" in used
    assert used - PROMETHEUS_OWN - exported == set()


def test_the_outbox_and_readiness_gauges_have_every_label(live_server):
    with urllib.request.urlopen(live_server.url + "/metrics", timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    outbox = {s.labels["status"]: s.value for s in families["usermgmt_mail_messages"].samples}
    assert outbox == {"pending": 0, "sent": 0, "failed": 0}
    ready = {s.labels["check"]: s.value for s in families["usermgmt_ready"].samples}
    assert ready == {"database": 1}


def test_a_second_app_over_the_same_metrics_reads_its_own_services(make_services):
    from usermgmt.api.app import create_app
    from usermgmt.api.metrics import Metrics

    metrics = Metrics()
    create_app(make_services(), metrics=metrics)
    create_app(make_services(), metrics=metrics)  # no duplicate registration
    text = metrics.render().decode()
    assert text.count("usermgmt_ready{") == 1
    assert 'usermgmt_mail_messages{status="failed"} 0.0' in text
