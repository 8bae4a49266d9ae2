"""Purging what is dead: spent or expired one-time tokens, dead sessions, old sent mail,
API keys revoked or expired longer ago than their retention (each key's expiry is
audited by the first purge after it, before the key is ever deleted).

Works in small batches, each its own transaction, so it never holds a long lock
and two purges at once (cron overlapping itself) simply share the work.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, or_, select

from usermgmt.core.context import Actor, RequestContext
from usermgmt.core.models import (
    ApiKey,
    AuthSession,
    MailMessage,
    MfaChallenge,
    OneTimeToken,
    RateLimitCounter,
)
from usermgmt.core.results import PurgeReport
from usermgmt.core.services.api_keys import audit_expiries, dead_keys_condition
from usermgmt.core.services.base import ServiceBase

BATCH = 1000
# Revoked sessions are kept a day for forensics and reuse detection.
REVOKED_KEEP = timedelta(days=1)


class MaintenanceService(ServiceBase):
    def _targets(self):
        now = self.clock.now()
        retention = timedelta(days=self.settings.mail_retention_days)
        return {
            "one_time_tokens": (
                OneTimeToken,
                OneTimeToken.id,
                or_(
                    OneTimeToken.expires_at < now,
                    OneTimeToken.used_at.is_not(None),
                    OneTimeToken.voided_at.is_not(None),
                ),
            ),
            "sessions": (
                AuthSession,
                AuthSession.id,
                or_(AuthSession.expires_at < now, AuthSession.revoked_at < now - REVOKED_KEEP),
            ),
            "mail": (
                MailMessage,
                MailMessage.id,
                (MailMessage.status == "sent") & (MailMessage.sent_at < now - retention),
            ),
            "api_keys": (
                ApiKey,
                ApiKey.id,
                dead_keys_condition(now, timedelta(days=self.settings.api_key_retention_days)),
            ),
            "mfa_challenges": (
                MfaChallenge,
                MfaChallenge.id,
                or_(MfaChallenge.expires_at < now, MfaChallenge.used_at.is_not(None)),
            ),
            "rate_limit_counters": (
                RateLimitCounter,
                RateLimitCounter.key,
                RateLimitCounter.expires_at < now,
            ),
        }

    def purge(
        self, actor: Actor, ctx: RequestContext, *, dry_run: bool = False, progress=None
    ) -> PurgeReport:
        """Delete dead rows in batches; ``progress(kind, n)`` is called after each batch."""
        actor.require_admin("maintenance")
        report = PurgeReport(dry_run=dry_run)
        if not dry_run:
            audit_expiries(self, Actor.system("system:expiry"), ctx)
        for kind, (model, key, condition) in self._targets().items():
            if dry_run:
                with self.db.read() as s:
                    report.counts[kind] = s.execute(
                        select(func.count()).select_from(model).where(condition)
                    ).scalar_one()
                continue
            total = 0
            while True:
                with self.db.write() as s:
                    ids = select(key).where(condition).limit(BATCH)
                    if self.db.is_postgres:
                        ids = ids.with_for_update(skip_locked=True)
                    batch = list(s.execute(ids).scalars())
                    if batch:
                        s.execute(delete(model).where(key.in_(batch)))
                if not batch:
                    break
                total += len(batch)
                if progress:
                    progress(kind, len(batch))
            report.counts[kind] = total
        if not dry_run and report.total:
            with self.db.write() as s:
                self.record_event(s, actor, ctx, "maintenance.purged", None, dict(report.counts))
        return report
