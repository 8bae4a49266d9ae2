"""The services: the one API of the product, shared by the CLI, the TUI and the REST API.

Writes and account flows are the services of this package; users are read
through ``user_reads`` (usermgmt.core.reads).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from usermgmt.core.clock import SYSTEM_CLOCK, Clock
from usermgmt.core.config import Settings, load_settings
from usermgmt.core.db import Database
from usermgmt.core.ids import RANDOM_IDS, IdSource
from usermgmt.core.reads.tuning import Tuning
from usermgmt.core.services.base import KeyRing

if TYPE_CHECKING:
    from usermgmt.core.mail.delivery import MailService
    from usermgmt.core.reads.users import UserReads
    from usermgmt.core.services.account_pages import AccountPageService
    from usermgmt.core.services.api_keys import ApiKeyService
    from usermgmt.core.services.audit_log import AuditService
    from usermgmt.core.services.auth import AuthService
    from usermgmt.core.services.health import HealthService
    from usermgmt.core.services.maintenance import MaintenanceService
    from usermgmt.core.services.mfa import MfaService
    from usermgmt.core.services.migrations import MigrationService
    from usermgmt.core.services.roles import RoleService
    from usermgmt.core.services.runtime import RuntimeService
    from usermgmt.core.services.scopes import ScopeService
    from usermgmt.core.services.sessions import SessionService
    from usermgmt.core.services.transfer import TransferService
    from usermgmt.core.services.users import UserService
    from usermgmt.core.webhooks.service import WebhookService

# Where each service lives: its module is imported when the service is first used, so a
# command that lists users never imports the mail, transfer or token machinery.
SERVICE_CLASSES = {
    "users": ("usermgmt.core.services.users", "UserService"),
    "user_reads": ("usermgmt.core.reads.users", "UserReads"),
    "roles": ("usermgmt.core.services.roles", "RoleService"),
    "auth": ("usermgmt.core.services.auth", "AuthService"),
    "sessions": ("usermgmt.core.services.sessions", "SessionService"),
    "audit": ("usermgmt.core.services.audit_log", "AuditService"),
    "maintenance": ("usermgmt.core.services.maintenance", "MaintenanceService"),
    "transfer": ("usermgmt.core.services.transfer", "TransferService"),
    "mail": ("usermgmt.core.mail.delivery", "MailService"),
    "health": ("usermgmt.core.services.health", "HealthService"),
    "scopes": ("usermgmt.core.services.scopes", "ScopeService"),
    "runtime": ("usermgmt.core.services.runtime", "RuntimeService"),
    "migrations": ("usermgmt.core.services.migrations", "MigrationService"),
    "account_pages": ("usermgmt.core.services.account_pages", "AccountPageService"),
    "api_keys": ("usermgmt.core.services.api_keys", "ApiKeyService"),
    "mfa": ("usermgmt.core.services.mfa", "MfaService"),
    "webhooks": ("usermgmt.core.webhooks.service", "WebhookService"),
}


class _OnFirstUse:
    """A Services field whose service is built the first time it is read.

    The field's default is None, meaning "not built yet"; a value given to the
    constructor (or to ``dataclasses.replace``) is used as it is.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, services: Services | None, owner: type | None = None) -> Any:
        if services is None:  # the class attribute: the dataclass default
            return None
        built = services.__dict__.get(self.name)
        if built is None:
            built = services._build(self.name)
        return built

    def __set__(self, services: Services, value: Any) -> None:
        services.__dict__[self.name] = value


@dataclass
class Services:
    """Every service over one database. Faces use the services alone: ``settings``, ``db``
    and ``keys`` are what the services are built from (and what tests set up with).

    ``clock`` and ``ids`` are the one present and the one id source of every service;
    a face that needs the time asks ``services.clock.now()``.
    """

    settings: Settings
    db: Database
    keys: KeyRing
    tuning: Tuning = field(default_factory=Tuning)
    clock: Clock = SYSTEM_CLOCK
    ids: IdSource = RANDOM_IDS
    users: UserService = _OnFirstUse()  # type: ignore[assignment]
    user_reads: UserReads = _OnFirstUse()  # type: ignore[assignment]
    roles: RoleService = _OnFirstUse()  # type: ignore[assignment]
    auth: AuthService = _OnFirstUse()  # type: ignore[assignment]
    sessions: SessionService = _OnFirstUse()  # type: ignore[assignment]
    audit: AuditService = _OnFirstUse()  # type: ignore[assignment]
    maintenance: MaintenanceService = _OnFirstUse()  # type: ignore[assignment]
    transfer: TransferService = _OnFirstUse()  # type: ignore[assignment]
    mail: MailService = _OnFirstUse()  # type: ignore[assignment]
    health: HealthService = _OnFirstUse()  # type: ignore[assignment]
    scopes: ScopeService = _OnFirstUse()  # type: ignore[assignment]
    runtime: RuntimeService = _OnFirstUse()  # type: ignore[assignment]
    migrations: MigrationService = _OnFirstUse()  # type: ignore[assignment]
    account_pages: AccountPageService = _OnFirstUse()  # type: ignore[assignment]
    api_keys: ApiKeyService = _OnFirstUse()  # type: ignore[assignment]
    mfa: MfaService = _OnFirstUse()  # type: ignore[assignment]
    webhooks: WebhookService = _OnFirstUse()  # type: ignore[assignment]
    _lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def _build(self, name: str) -> Any:
        """Build the service ``name`` once, whichever thread asks first."""
        with self._lock:
            built = self.__dict__.get(name)
            if built is None:
                module, cls = SERVICE_CLASSES[name]
                service_class = getattr(importlib.import_module(module), cls)
                sources = {"clock": self.clock, "ids": self.ids}
                if name == "auth":
                    built = service_class(self.db, self.settings, self.keys, self.users, **sources)
                elif name == "mfa":
                    built = service_class(self.db, self.settings, self.keys, self.auth, **sources)
                elif name == "user_reads":
                    built = service_class(self.db, self.tuning, clock=self.clock)
                else:
                    built = service_class(self.db, self.settings, self.keys, **sources)
                self.__dict__[name] = built
            return built

    def where(self) -> str:
        """The database, password masked."""
        return self.runtime.options.database

    def close(self) -> None:
        reads = self.__dict__.get("user_reads")
        if reads is not None:
            reads.close()
        self.db.dispose()


def pool_size_for(threads: int, tuning: Tuning) -> int:
    """Pooled connections for ``threads`` threads that use the services at once.

    At its peak a thread holds two (a request's scope, for the token check, and
    a session, for a page); a PostgreSQL search's half counts hold one per
    count thread; the mail and webhook deliverers take one each, and one is spare. A pool
    smaller than that peak opens and closes connections under load (a new
    PostgreSQL backend each time), which costs more than the statements.
    """
    return 2 * threads + tuning.count_threads + 3


def build_services(
    settings: Settings | None = None,
    *,
    threads: int = 2,
    tuning: Tuning | None = None,
    ensure_schema: bool = True,
    eager: bool = True,
    check_mail: bool = True,
    clock: Clock | None = None,
    ids: IdSource | None = None,
) -> Services:
    """The composition root: one Database and every service over it.

    ``threads``: how many of the caller's threads use the services at once (a
    server's request threads; a command or the console: its own and a worker);
    the connection pool is sized for them. ``tuning``: the read model's.

    With ``ensure_schema`` an empty database gets its schema (first use), and a
    schema behind the code raises SchemaOutOfDate (which names the fix).

    ``eager=False`` builds each service (and imports its module) when it is first
    used, for short-lived processes such as one CLI command; a server keeps the
    default and pays every import before its first request. Either way a bad SMTP
    URL or mail template override is a ConfigurationError here, not on first use,
    unless ``check_mail`` is false (``usermgmt info`` and the ``db`` commands, which
    must work whatever the mail settings say).

    ``clock`` and ``ids``: the present and the id source of every service (the
    system clock and random UUIDs by default; tests pass a ManualClock and
    SequentialIds).
    """
    from usermgmt.core import migrate

    settings = settings or load_settings()
    tuning = tuning or Tuning()
    db = Database(
        settings.database_url,
        pool_size=pool_size_for(threads, tuning),
        prepared_statements=settings.database_prepared_statements,
    )
    try:
        if ensure_schema:
            migrate.ensure_schema(db)
        services = Services(
            settings=settings,
            db=db,
            keys=KeyRing(db, settings),
            tuning=tuning,
            clock=clock or SYSTEM_CLOCK,
            ids=ids or RANDOM_IDS,
        )
        mail_configured = settings.smtp_url is not None or settings.mail_templates_dir is not None
        for name in SERVICE_CLASSES:
            if eager or (name == "mail" and mail_configured and check_mail):
                getattr(services, name)
    except Exception:
        db.dispose()  # (a read model starts no thread before its first count)
        raise
    return services
