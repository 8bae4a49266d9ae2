"""The running configuration, as the faces may see it.

Faces never read the settings: what they need to know of them comes typed from
here. :func:`runtime_options` (also ``services.runtime.options``) holds the
values a face acts on (the API's CORS origins, body limit and rate-limit rules;
the log level; the database's name with its password masked), and
:meth:`RuntimeService.describe` every setting with its source, secrets hidden,
for ``usermgmt info``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from usermgmt.core import migrate
from usermgmt.core.config import Settings, data_dir, describe_settings
from usermgmt.core.errors import DatabaseUnavailable
from usermgmt.core.migrate import SchemaState
from usermgmt.core.services.base import ServiceBase

# USERMGMT_RATE_LIMIT_STORAGE values that keep the counters in the application's database.
DATABASE_STORAGE = ("database", "db", "database://")


@dataclass(frozen=True)
class RateLimitRules:
    """The API's rate limits per client IP: ``login`` and ``auth`` are rates such as
    ``10/minute`` (several separated by ``;``) or ``off``; ``storage`` is where the
    counters live (``memory://``, a ``limits`` storage URI, or ``database``) and
    ``storage_timeout`` how long a request waits on a shared store, in seconds."""

    login: str
    auth: str
    storage: str
    storage_timeout: float

    @property
    def enabled(self) -> bool:
        return self.login != "off" or self.auth != "off"

    @property
    def in_database(self) -> bool:
        """The counters live in the application's database (see ``rate_limit_counters``)."""
        return self.storage.strip().lower() in DATABASE_STORAGE

    @property
    def counted_per_process(self) -> bool:
        """A limit is on and its counters would live in this process alone."""
        return self.enabled and self.storage.strip().lower().startswith("memory://")


@dataclass(frozen=True)
class ApiOptions:
    """What the REST API is configured with."""

    cors_origins: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    max_body_bytes: int
    rate_limits: RateLimitRules
    max_import_bytes: int  # the upload of POST /users/import (streamed, not parsed whole)


@dataclass(frozen=True)
class RuntimeOptions:
    """The configuration values a face may act on; nothing secret."""

    database: str  # the database URL with its password masked, for messages and logs
    backend: str  # sqlite or postgresql
    log_level: str
    log_format: str | None  # json, text, or None: the face's own default
    data_dir: Path  # where a face keeps files of its own (the console's log)
    api: ApiOptions
    # PostgreSQL: whether psycopg prepares statements on the server (off for
    # PgBouncer's transaction pooling); None on SQLite.
    prepared_statements: bool | None = None
    # How often the console's users and audit screens fetch their rows again (0: never).
    tui_refresh_seconds: float = 10.0


def runtime_options(settings: Settings) -> RuntimeOptions:
    """The options of ``settings``, for a face that has no services yet (or none at all)."""
    from usermgmt.core.db import mask_url

    backend = settings.database_url.split(":", 1)[0].split("+", 1)[0]
    prepared = None
    if backend == "postgresql":
        from usermgmt.core.db.driver_options import psycopg_options

        prepared = psycopg_options(
            settings.database_url, prepared_statements=settings.database_prepared_statements
        ).prepared_statements
    return RuntimeOptions(
        database=mask_url(settings.database_url),
        backend=backend,
        log_level=settings.log_level,
        log_format=settings.log_format,
        tui_refresh_seconds=settings.tui_refresh_seconds,
        data_dir=Path(data_dir()),
        api=ApiOptions(
            cors_origins=tuple(settings.cors_origin_list),
            trusted_proxies=tuple(settings.trusted_proxy_list),
            max_body_bytes=settings.max_body_bytes,
            rate_limits=RateLimitRules(
                login=settings.rate_limit_login,
                auth=settings.rate_limit_auth,
                storage=settings.rate_limit_storage,
                storage_timeout=settings.rate_limit_storage_timeout,
            ),
            max_import_bytes=settings.max_import_bytes,
        ),
        prepared_statements=prepared,
    )


@dataclass(frozen=True)
class SettingSource:
    """One setting: its environment name, its value (secrets hidden) and where it came from."""

    name: str
    value: str
    source: str


@dataclass(frozen=True)
class RuntimeDescription:
    """The running configuration, for an operator: see :meth:`RuntimeService.describe`."""

    version: str
    python: str
    database: str  # password masked
    backend: str
    # None when the database did not answer; ``unavailable`` then says why.
    schema: SchemaState | None
    head: str
    settings: tuple[SettingSource, ...]
    unavailable: DatabaseUnavailable | None = None


class RuntimeService(ServiceBase):
    @cached_property
    def options(self) -> RuntimeOptions:
        return runtime_options(self.settings)

    @property
    def api_options(self) -> ApiOptions:
        return self.options.api

    def describe(
        self, *, command_line: frozenset[str] | set[str] = frozenset()
    ) -> RuntimeDescription:
        """Version, database, schema revision and every setting with its source.

        ``command_line`` names the settings given as command-line options. A
        database that does not answer is described as such (``schema`` None,
        ``unavailable`` the error), not raised: the rest is worth showing.
        """
        from usermgmt import __version__

        options = self.options
        schema: SchemaState | None = None
        unavailable: DatabaseUnavailable | None = None
        try:
            schema = migrate.schema_state(self.db)
        except DatabaseUnavailable as exc:
            unavailable = exc
        return RuntimeDescription(
            version=__version__,
            python=sys.version.split()[0],
            database=options.database,
            backend=options.backend,
            schema=schema,
            head=schema.head if schema else migrate.head_revision(),
            settings=tuple(
                SettingSource(**row) for row in describe_settings(self.settings, set(command_line))
            ),
            unavailable=unavailable,
        )

    def rate_limit_counters(self):
        """The rate-limit counters kept in this database (``USERMGMT_RATE_LIMIT_STORAGE=
        database``): a ``limits`` storage shared by every server on the database."""
        from usermgmt.core.ratelimit_store import DatabaseRateLimitStorage

        return DatabaseRateLimitStorage(self.db, self.clock)
