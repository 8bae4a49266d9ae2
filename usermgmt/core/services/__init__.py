"""The services: the one API of the product, shared by the CLI, the TUI and the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from usermgmt.core.config import Settings, load_settings
from usermgmt.core.db import Database
from usermgmt.core.services.audit_log import AuditService
from usermgmt.core.services.auth import AuthService
from usermgmt.core.services.base import KeyRing
from usermgmt.core.services.maintenance import MaintenanceService
from usermgmt.core.services.roles import RoleService
from usermgmt.core.services.sessions import SessionService
from usermgmt.core.services.transfer import TransferService
from usermgmt.core.services.users import UserService

if TYPE_CHECKING:  # imported in build_services: the mail package imports services modules
    from usermgmt.core.mail.delivery import MailService


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyRing
    users: UserService
    roles: RoleService
    auth: AuthService
    sessions: SessionService
    audit: AuditService
    maintenance: MaintenanceService
    transfer: TransferService
    mail: MailService

    def close(self) -> None:
        self.db.dispose()


def build_services(
    settings: Settings | None = None, *, pool_size: int = 10, ensure_schema: bool = True
) -> Services:
    """The composition root: one Database and every service over it.

    With ``ensure_schema`` an empty database gets its schema (first use), and a
    schema behind the code raises SchemaOutOfDate (which names the fix).
    """
    from usermgmt.core import migrate
    from usermgmt.core.mail.delivery import MailService

    settings = settings or load_settings()
    db = Database(settings.database_url, pool_size=pool_size)
    if ensure_schema:
        try:
            migrate.ensure_schema(db)
        except Exception:
            db.dispose()
            raise
    keys = KeyRing(db, settings)
    users = UserService(db, settings, keys)
    try:  # a bad SMTP URL or template override is a ConfigurationError here
        mail = MailService(db, settings, keys)
    except Exception:
        db.dispose()
        raise
    return Services(
        settings=settings,
        db=db,
        keys=keys,
        users=users,
        roles=RoleService(db, settings, keys),
        auth=AuthService(db, settings, keys, users),
        sessions=SessionService(db, settings, keys),
        audit=AuditService(db, settings, keys),
        maintenance=MaintenanceService(db, settings, keys),
        transfer=TransferService(db, settings, keys),
        mail=mail,
    )
