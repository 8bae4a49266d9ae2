"""Prometheus metrics, in a registry of the app's own (so tests can build many apps).

A server process exposes its own counters at ``/metrics``. The workers of
``usermgmt serve --workers N`` share one port, so there each worker writes its
values to the directory in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, set up by usermgmt.api.workers) and ``/metrics``, whichever
worker answers, reports the sum over all of them. Separate ``usermgmt serve``
processes (on other ports or hosts) are scraped one by one, as usual.

The audit chain's head is not a counter of this process: it is read from the
database at each scrape (one primary-key read), so it is current whichever
process or CLI wrote last. So are the readiness checks (``usermgmt_ready``, what
``/health/ready`` answers) and the mail outbox by status
(``usermgmt_mail_messages``; dead letters are ``failed``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from usermgmt.core.audit import ChainHead
from usermgmt.core.errors import (
    AccountDisabled,
    AccountLocked,
    DomainError,
    InvalidCredentials,
    InvalidMfaCode,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "usermgmt_http_requests",
            "HTTP requests served, by method, route template and status",
            ("method", "route", "status"),
            registry=r,
        )
        self.latency = Histogram(
            "usermgmt_http_request_duration_seconds",
            "Time to serve a request, by method, route template and status",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "usermgmt_http_errors",
            "Error responses (4xx and 5xx) by error code",
            ("status", "code"),
            registry=r,
        )
        self.logins = Counter(
            "usermgmt_logins",
            "Login attempts by outcome",
            ("outcome",),
            registry=r,
        )
        self.lockouts = Counter(
            "usermgmt_login_lockouts",
            "Login attempts answered 423 because the identifier or account is locked",
            registry=r,
        )
        self.rate_limited = Counter(
            "usermgmt_rate_limited",
            "Requests refused with 429, by limit",
            ("limit",),
            registry=r,
        )
        self.queue_depth = Gauge(
            "usermgmt_server_queue_depth",
            "Requests waiting for a free server thread (last reported by waitress)",
            registry=r,
            multiprocess_mode="livesum",  # workers: the sum over the live ones
        )
        self.queue_events = Counter(
            "usermgmt_server_queue_events",
            "Times a request had to wait for a free server thread",
            registry=r,
        )
        for outcome in (
            "success",
            "invalid_credentials",
            "locked",
            "disabled",
            "error",
            "mfa_required",
        ):
            self.logins.labels(outcome)
        # (method, route, status) -> its counter and histogram children. Bounded: the
        # method is a known one or OTHER, the route a template or "unmatched".
        self._children: dict[tuple[str, str, int], tuple] = {}
        self._audit_head: AuditHeadCollector | None = None
        self._at_scrape: list[ScrapeCollector] = []

    def login_refused(self, exc: DomainError) -> None:
        """Count a refused login, at its password step or its second factor."""
        if isinstance(exc, InvalidCredentials | InvalidMfaCode):
            outcome = "invalid_credentials"
        elif isinstance(exc, AccountLocked):
            outcome = "locked"
            self.lockouts.inc()
        elif isinstance(exc, AccountDisabled):
            outcome = "disabled"
        else:
            outcome = "error"
        self.logins.labels(outcome).inc()

    def publish_audit_head(self, read_head: Callable[[], ChainHead]) -> None:
        """Expose the audit chain's head, read with ``read_head`` at each scrape."""
        if self._audit_head is None:
            self._audit_head = AuditHeadCollector(read_head)
            self.registry.register(self._audit_head)
        else:
            self._audit_head.read_head = read_head

    def publish_at_scrape(self, collector: ScrapeCollector) -> None:
        """Register ``collector``, whose values are read when /metrics is scraped
        (a second app over the same Metrics replaces the reader of the same name)."""
        for known in self._at_scrape:
            if known.name == collector.name:
                known.read = collector.read
                return
        self.registry.register(collector)
        self._at_scrape.append(collector)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:  # labels() takes a lock and builds a key each time: once is enough
            code = str(status)
            children = (
                self.requests.labels(method, route, code),
                self.latency.labels(method, route, code),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if not shared:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(SharedValues(shared))
        if self._audit_head is not None:
            registry.register(self._audit_head)
        for collector in self._at_scrape:
            registry.register(collector)
        return generate_latest(registry)


class AuditHeadCollector:
    """``usermgmt_audit_head_seq`` and ``usermgmt_audit_head_info{seq, hash}``.

    A hash cannot be a sample value, so it is a label of an info metric; there is
    one series at a time (each head replaces the last). While the database does
    not answer, the two are absent rather than the scrape failing.
    """

    def __init__(self, read_head: Callable[[], ChainHead]) -> None:
        self.read_head = read_head

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, InfoMetricFamily]:
        return (
            GaugeMetricFamily(
                "usermgmt_audit_head_seq", "Sequence number of the audit chain's last event"
            ),
            InfoMetricFamily(
                "usermgmt_audit_head",
                "The audit chain's head (sequence and hash), to record and check with "
                "usermgmt audit verify --expect-head SEQ:HASH",
            ),
        )

    def describe(self):  # registering needs the names only, not a database read
        return list(self._families())

    def collect(self):
        try:
            head = self.read_head()
        except DomainError:
            return []
        seq, info = self._families()
        seq.add_metric([], head.seq)
        info.add_metric([], {"seq": str(head.seq), "hash": head.hash})
        return [seq, info]


class ScrapeCollector:
    """A gauge family read at each scrape: ``read()`` returns {label value: number}.

    While the database does not answer (a DomainError), the family is absent
    rather than the scrape failing.
    """

    def __init__(self, name: str, doc: str, label: str, read: Callable[[], dict]) -> None:
        self.name, self.doc, self.label, self.read = name, doc, label, read

    def describe(self):
        return [GaugeMetricFamily(self.name, self.doc, labels=[self.label])]

    def collect(self):
        try:
            values = self.read()
        except DomainError:
            return []
        family = GaugeMetricFamily(self.name, self.doc, labels=[self.label])
        for key, value in values.items():
            family.add_metric([key], value)
        return [family]


def readiness_collector(checks: Callable[[], dict[str, str]]) -> ScrapeCollector:
    """``usermgmt_ready{check}``: 1 while the dependency answers, as /health/ready says."""
    return ScrapeCollector(
        "usermgmt_ready",
        "1 while a dependency /health/ready checks answers (database, rate_limit_store), else 0",
        "check",
        lambda: {name: int(state == "ok") for name, state in checks().items()},
    )


def outbox_collector(counts: Callable[[], dict[str, int]]) -> ScrapeCollector:
    """``usermgmt_mail_messages{status}``: the outbox by status, dead letters are ``failed``."""
    return ScrapeCollector(
        "usermgmt_mail_messages",
        "Messages in the mail outbox by status (pending, sent, failed = dead letters)",
        "status",
        counts,
    )


class SharedValues:
    """prometheus_client's MultiProcessCollector, minus its races with starting workers.

    A worker creates its value files empty and sizes them a moment later, and the
    parent deletes a dead worker's live-gauge files: a scrape that globbed such a
    file failed whole (a 500 from /metrics while a worker was being replaced).
    Empty files hold no values yet and are skipped; a file gone under the read
    means another look.
    """

    ATTEMPTS = 3

    def __init__(self, path: str) -> None:
        self.path = path

    def collect(self):
        import struct

        from prometheus_client.multiprocess import MultiProcessCollector

        for attempt in range(self.ATTEMPTS):
            files = [str(f) for f in Path(self.path).glob("*.db") if _size(f) > 0]
            try:
                return MultiProcessCollector.merge(files, accumulate=True)
            except (OSError, struct.error):
                if attempt == self.ATTEMPTS - 1:
                    raise
        return []


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
