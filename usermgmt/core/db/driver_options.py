"""psycopg's own connection options, read from a database URL with their real types.

SQLAlchemy hands every query parameter of a ``postgresql+psycopg://`` URL to
``psycopg.connect`` as a string. Most are libpq parameters (``sslmode``,
``connect_timeout``, …), which libpq parses itself; ``prepare_threshold`` is
psycopg's, and as the string ``"0"`` it broke the first statement run. It is
taken out of the URL here and passed as an int, or as None (``none``): no
server-side prepared statements, which a pooler in transaction mode (PgBouncer
before 1.21) needs, since a statement prepared in one server session is
unknown to the next transaction's. ``USERMGMT_DATABASE_PREPARED_STATEMENTS=false``
says the same without touching the URL.

The other keywords of ``psycopg.connect`` that are not libpq's (``autocommit``,
``row_factory``, ``cursor_factory``, ``context``) are usermgmt's to set: in a
URL they are refused with a clear error rather than passed on as strings.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import URL, make_url

THRESHOLD_KEY = "prepare_threshold"
NOT_FROM_URL = ("autocommit", "row_factory", "cursor_factory", "context")
NONE_WORDS = ("none", "null", "off")


@dataclass(frozen=True)
class DriverOptions:
    """The URL left for libpq, and psycopg's keyword arguments."""

    url: URL
    connect_args: dict

    @property
    def prepared_statements(self) -> bool:
        """Whether psycopg prepares statements on the server (after its threshold of uses)."""
        return self.connect_args.get(THRESHOLD_KEY, 5) is not None


def prepare_threshold(raw: str | tuple[str, ...]) -> int | None:
    """The URL's ``prepare_threshold``: a whole number >= 0, or ``none`` (never prepare)."""
    if isinstance(raw, tuple):
        raise ValueError(f"{THRESHOLD_KEY} is given more than once in the URL")
    text = raw.strip()
    if text.lower() in NONE_WORDS:
        return None
    if not text.isdigit():
        raise ValueError(
            f"{THRESHOLD_KEY} in the URL must be a whole number >= 0 "
            f"(uses before psycopg prepares a statement) or 'none' (never), not {raw!r}"
        )
    return int(text)


def psycopg_options(url: str | URL, *, prepared_statements: bool = True) -> DriverOptions:
    """The driver options of a PostgreSQL URL; ValueError names a bad parameter.

    ``prepared_statements=False`` (the setting) turns server-side prepared
    statements off: psycopg's ``prepare_threshold=None``.
    """
    parsed = make_url(url)
    for key in NOT_FROM_URL:
        if key in parsed.query:
            raise ValueError(f"{key} in the URL is not supported: usermgmt sets it itself")
    connect_args: dict = {}
    if THRESHOLD_KEY in parsed.query:
        connect_args[THRESHOLD_KEY] = prepare_threshold(parsed.query[THRESHOLD_KEY])
        parsed = parsed.difference_update_query([THRESHOLD_KEY])
    if not prepared_statements:
        if connect_args.get(THRESHOLD_KEY) is not None:
            raise ValueError(
                f"USERMGMT_DATABASE_URL sets {THRESHOLD_KEY}="
                f"{connect_args[THRESHOLD_KEY]}, which turns prepared statements on"
            )
        connect_args[THRESHOLD_KEY] = None
    return DriverOptions(url=parsed, connect_args=connect_args)
