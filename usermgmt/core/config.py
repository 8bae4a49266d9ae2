"""Settings, read from the environment (prefix ``USERMGMT_``) by pydantic-settings.

Names and defaults are fixed by docs/configuration.md. A bad value raises
:class:`ConfigurationError` when the settings are loaded, never a silent default.
Nothing is read at import time: call :func:`load_settings`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import DirectoryPath, Field, SecretStr, ValidationInfo, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from usermgmt.core.errors import ConfigurationError

ENV_PREFIX = "USERMGMT_"
RATE_LIMIT_OFF = {"0", "off", "none", "false", ""}


def data_dir() -> Path:
    """The user's data directory (XDG on Linux), overridable with USERMGMT_DATA_DIR."""
    override = os.environ.get(f"{ENV_PREFIX}DATA_DIR")
    if override:
        return Path(override)
    from platformdirs import user_data_path

    return user_data_path("usermgmt", appauthor=False)


def default_database_url() -> str:
    return f"sqlite:///{data_dir() / 'usermgmt.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(default_factory=default_database_url)
    # False: no server-side prepared statements (PgBouncer in transaction mode).
    database_prepared_statements: bool = True
    jwt_secret: SecretStr | None = None
    access_token_ttl: int = Field(900, ge=30, le=86400)
    refresh_token_ttl: int = Field(604800, ge=60, le=31536000)
    refresh_reuse_grace: int = Field(10, ge=0, le=300)
    bcrypt_rounds: int = Field(10, ge=4, le=31)
    lockout_threshold: int = Field(5, ge=1, le=1000)
    lockout_minutes: int = Field(15, ge=1, le=100000)
    # Defaults are known good: validating them would import `limits` (~30 ms) in
    # every process, including CLI commands that never rate-limit.
    rate_limit_login: str = Field("10/minute", validate_default=False)
    rate_limit_auth: str = Field("5/minute", validate_default=False)
    rate_limit_storage: str = "memory://"
    # Seconds a request waits on a shared rate-limit store (Redis) before it is
    # answered 503: for the connection and for each command.
    rate_limit_storage_timeout: float = Field(0.5, gt=0, le=30)
    trusted_proxies: str = ""
    cors_origins: str = ""
    max_body_bytes: int = Field(65536, ge=1024, le=64 * 1024 * 1024)
    # The one body that may be bigger: a file uploaded to POST /users/import.
    max_import_bytes: int = Field(256 * 1024 * 1024, ge=1024, le=16 * 1024 * 1024 * 1024)
    allow_registration: bool = True
    reset_token_ttl: int = Field(3600, ge=60, le=604800)
    verify_token_ttl: int = Field(86400, ge=60, le=2592000)
    invite_token_ttl: int = Field(604800, ge=60, le=2592000)
    public_url: str = "http://127.0.0.1:8000"
    smtp_url: SecretStr | None = None
    mail_dir: Path | None = None
    mail_from: str = "usermgmt@localhost"
    mail_templates_dir: DirectoryPath | None = None
    mail_max_attempts: int = Field(8, ge=1, le=100)
    mail_retention_days: int = Field(30, ge=0, le=3650)
    # Where the links in mails point: empty → the account pages `usermgmt serve` serves
    # under public_url; else an app's own page, e.g. https://app.example/reset?token={token}.
    link_template_verify: str | None = None
    link_template_reset: str | None = None
    link_template_invite: str | None = None
    pages_templates_dir: DirectoryPath | None = None
    api_key_retention_days: int = Field(30, ge=0, le=3650)
    # The second factor (docs/mfa.md): the keys that encrypt TOTP secrets (comma-separated,
    # the first encrypts, all decrypt; unset: the key file in the data directory), the
    # roles that must enrol, and how long a login's challenge token lives.
    mfa_key: SecretStr | None = None
    mfa_required_roles: str = ""
    mfa_token_ttl: int = Field(300, ge=30, le=3600)
    # Webhooks (docs/webhooks.md): per-attempt timeout, attempts before the dead letter,
    # how long a subscription may fail before it is disabled, the first retry's delay.
    webhook_allow_private: bool = False
    webhook_timeout: float = Field(10.0, gt=0, le=120)
    webhook_max_attempts: int = Field(10, ge=1, le=100)
    webhook_disable_after: int = Field(432000, ge=0, le=31536000)
    webhook_backoff_base: float = Field(30.0, ge=0, le=86400)
    # Seconds between the console's own refreshes of the users and audit screens; 0: off.
    tui_refresh_seconds: float = Field(10.0, ge=0, le=86400)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] | None = None

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(
                "not a database URL (sqlite:///path or postgresql+psycopg://…)"
            ) from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite and postgresql databases are supported")
        if url.get_backend_name() == "postgresql" and url.get_driver_name() not in (
            "psycopg",
            "postgresql",
        ):
            raise ValueError("use the psycopg 3 driver: postgresql+psycopg://…")
        if url.get_backend_name() == "postgresql":
            from usermgmt.core.db.driver_options import psycopg_options

            psycopg_options(url)  # psycopg's own parameters, with their types
        return value

    @field_validator("database_prepared_statements")
    @classmethod
    def _check_prepared(cls, value: bool, info: ValidationInfo) -> bool:
        url = info.data.get("database_url")
        if not value and url and url.startswith("postgresql"):
            from usermgmt.core.db.driver_options import psycopg_options

            psycopg_options(url, prepared_statements=False)
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _check_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < 32:
            raise ValueError("must be at least 32 bytes")
        return value

    @field_validator("rate_limit_login", "rate_limit_auth")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        if value.strip().lower() in RATE_LIMIT_OFF:
            return "off"
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError("expected a rate such as '10/minute', or 'off'") from exc
        return value

    @field_validator("link_template_verify", "link_template_reset", "link_template_invite")
    @classmethod
    def _check_link_template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value.count("{token}") != 1:
            raise ValueError("must contain {token} exactly once")
        parts = urlsplit(value.replace("{token}", "T"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @property
    def effective_mail_dir(self) -> Path:
        return self.mail_dir or data_dir() / "mail"

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def mfa_required_role_set(self) -> frozenset[str]:
        return frozenset(r.strip() for r in self.mfa_required_roles.split(",") if r.strip())

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]


SECRET_FIELDS = {"jwt_secret", "smtp_url"}


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment; explicit overrides (CLI flags) win."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except PydanticValidationError as exc:
        problems = []
        field_errors: dict[str, list[str]] = {}
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            problems.append(f"{name}: {err['msg']}")
            field_errors.setdefault(name, []).append(err["msg"])
        raise ConfigurationError("; ".join(problems), field_errors=field_errors) from None


def describe_settings(
    settings: Settings, overrides: set[str] | None = None
) -> list[dict[str, str]]:
    """Effective values (secrets and URL passwords masked) and where each came from."""
    from usermgmt.core.db import mask_url

    rows = []
    for name in Settings.model_fields:
        env_name = ENV_PREFIX + name.upper()
        value = getattr(settings, name)
        if name in SECRET_FIELDS:
            shown = "(set, hidden)" if value is not None else "(not set)"
            if name == "jwt_secret" and value is None:
                shown = "(generated, kept in the database)"
        elif name == "database_url":
            shown = mask_url(value)
        else:
            shown = "" if value is None else str(value)
        if overrides and name in overrides:
            source = "command line"
        elif env_name in os.environ:
            source = f"environment ({env_name})"
        else:
            source = "default"
        rows.append({"name": env_name, "value": shown, "source": source})
    return rows
