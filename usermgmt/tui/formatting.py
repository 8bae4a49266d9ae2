"""How values look on screen. Times are UTC, relative to the core's clock
(``ConsoleContext.now``)."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.text import Text

from usermgmt.core.schemas import UserOut
from usermgmt.core.text import printable

# Status word (ConsoleContext.status) -> style class of the tables and detail view.
STATUS_STYLE = {
    "active": "good",
    "unverified": "warn",
    "locked": "bad",
    "inactive": "muted",
    "deleted": "muted",
}


def plain(text: str) -> Text:
    """Stored text for a DataTable cell: never markup, controls shown as escapes."""
    return Text(printable(text))


def in_markup(text: str) -> str:
    """Stored text to put inside a markup string: controls escaped, brackets literal.

    Every ``[`` is escaped, not only those that look like a tag (``textual.markup.escape``):
    after an unclosed ``[`` such as ESC's ``[2J``, the parser no longer reads the
    escape of a later tag.
    """
    return printable(text).replace("[", "\\[")


def full_name(user: UserOut) -> str:
    return " ".join(p for p in (user.first_name, user.last_name) if p)


def ago(when: datetime | None, now: datetime, never: str = "never") -> str:
    """``3m ago``, ``5h ago``, ``12d ago``; older than a year shows the date."""
    if when is None:
        return never
    seconds = (now - when).total_seconds()
    if seconds < 0:
        return "in " + _span(-seconds)
    if seconds < 60:
        return "just now"
    if seconds > 365 * 86400:
        return when.strftime("%Y-%m-%d")
    return _span(seconds) + " ago"


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def day(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "—"


def stamp(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M:%S") if when else "—"


def stamp_ago(when: datetime | None, now: datetime, never: str = "never") -> str:
    if when is None:
        return never
    return f"{stamp(when)} UTC ({ago(when, now)})"


def lock_text(user: UserOut, now: datetime) -> str:
    if user.locked_until is None or user.locked_until <= now:
        return "no"
    if user.locked_until.year >= 9999:
        return "until unlocked"
    return f"until {stamp(user.locked_until)} UTC"


def short_id(value: object | None) -> str:
    return str(value)[:8] if value else "—"


def summarize_changes(changes: dict) -> str:
    """``email: a → b; roles: user → admin,user`` for diffs, ``key=value`` otherwise."""
    parts = []
    for key, value in changes.items():
        if isinstance(value, dict) and set(value) == {"before", "after"}:
            parts.append(f"{key}: {_plain(value['before'])} → {_plain(value['after'])}")
        elif isinstance(value, dict):
            parts.append(f"{key}: {{{summarize_changes(value)}}}")
        else:
            parts.append(f"{key}={_plain(value)}")
    return "; ".join(parts)


def _plain(value: object) -> str:
    if value is None:
        return "∅"
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "∅"
    return str(value)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: datetime) -> datetime | None:
    """``2025-01-31``, ``2025-01-31 14:00``, ISO 8601, or ``15m`` / ``2h`` / ``7d`` / ``3w`` ago.

    Times without a zone are UTC, like every time the console shows.
    Raises ValueError with a message for the operator.
    """
    from datetime import timedelta

    text = text.strip()
    if not text:
        return None
    unit = text[-1:].lower()
    count = text[:-1].strip()
    try:
        if unit in _UNITS and count.isascii() and count.isdigit():
            return now - timedelta(seconds=int(count) * _UNITS[unit])
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("use 2025-01-31, 2025-01-31 14:00, or 15m / 2h / 7d ago") from None
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:
        raise ValueError("that time is out of range") from None
