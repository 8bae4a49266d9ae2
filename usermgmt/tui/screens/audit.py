"""The audit log, newest first: filter by actor, target, action and time; `v` verifies."""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from usermgmt.core.audit import ChainReport
from usermgmt.core.context import Actor
from usermgmt.core.errors import DomainError, NotFound, ValidationError
from usermgmt.core.schemas import AuditEventOut, UserOut
from usermgmt.core.text import has_unsafe
from usermgmt.tui import formatting as fmt
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.paging import AuditFilter, AuditSource
from usermgmt.tui.widgets.bars import KeyFooter, StatusLine, TopBar
from usermgmt.tui.widgets.lazy_table import Column, LazyTable

COLUMNS = [
    Column("seq", "Seq", width=7),
    Column("at", "When (UTC)", width=19),
    Column("action", "Action", width=20),
    Column("actor", "Actor", ratio=2, min_width=12),
    Column("target", "Target", width=8),
    Column("changes", "Changes", ratio=4, min_width=12),
]
FILTER_INPUTS = [
    ("actor", "actor: email or id"),
    ("target", "target: email or id"),
    ("action", "action: user.*"),
    ("since", "since: 7d or 2025-01-31"),
    ("until", "until: 1h or 2025-02-01"),
]


class AuditScreen(Screen):
    HELP_TITLE = "Audit log"
    AUTO_FOCUS = "#events"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash,f", "filters", "Filter", key_display="/"),
        Binding("v", "verify", "Verify chain"),
        Binding("c", "clear_filters", "Clear filters", show=False),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx: ConsoleContext, *, target: UserOut | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.initial_target = target
        self.filter = AuditFilter(target_id=str(target.id) if target else None)
        self.filter_text = ""
        self._timer: Timer | None = None
        self.verifying = False

    def compose(self) -> ComposeResult:
        yield TopBar("Audit log", self.ctx.where)
        with Horizontal(id="audit-filters"):
            for key, placeholder in FILTER_INPUTS:
                value = _reference(self.initial_target) if key == "target" else ""
                yield Input(value, placeholder=placeholder, id=f"audit-{key}", compact=True)
        yield LazyTable(COLUMNS, self.cell, empty_text="No events match.", id="events")
        yield StatusLine(id="status-line")
        yield KeyFooter()

    @property
    def table(self) -> LazyTable:
        return self.query_one("#events", LazyTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.table.set_source(self._source(self.filter))
        self.update_status()

    def _source(self, flt: AuditFilter) -> AuditSource:
        return AuditSource(self.ctx.services, self.ctx.actor, flt, self.ctx.page_size)

    def cell(self, event: AuditEventOut, key: str) -> tuple[str, str | None]:
        if key == "seq":
            return str(event.seq), "muted"
        if key == "at":
            return fmt.stamp(event.at), None
        if key == "action":
            style = "bad" if event.action.endswith(("deleted", "locked", "revoked")) else None
            return event.action, style
        if key == "actor":
            return event.actor_label, None
        if key == "target":
            return fmt.short_id(event.target_id), "muted"
        if key == "changes":
            return fmt.summarize_changes(event.changes), None
        return "", None

    # ---- filters -------------------------------------------------------------------

    def _value(self, key: str) -> str:
        return self.query_one(f"#audit-{key}", Input).value.strip()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.input.remove_class("-bad-filter")
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.ctx.search_debounce * 2, self.apply_filters)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.apply_filters()
        self.table.focus()

    def apply_filters(self) -> None:
        """Parse the inputs; resolve actor/target references through the core, then reload."""
        now = self.ctx.now()
        times: dict[str, str | None] = {}
        for key in ("since", "until"):
            try:
                when = fmt.parse_when(self._value(key), now)
            except ValueError as exc:
                self._invalid(key, str(exc))
                return
            times[key] = when.isoformat() if when else None
        action = self._value("action") or None
        actor_ref = self._value("actor")
        label = actor_ref if Actor.is_label(actor_ref) else None  # an operator: no user to find
        refs = {"actor": "" if label else actor_ref, "target": self._value("target")}
        ctx = self.ctx

        def job(services) -> AuditFilter:
            ids: dict[str, str | None] = {}
            for key, ref in refs.items():
                try:
                    ids[key] = services.user_reads.resolve_id(ctx.actor, ref) if ref else None
                except NotFound:
                    raise NotFound(f"{key}: no user {ref!r}", details={"field": key}) from None
            return AuditFilter(
                actor_id=ids["actor"],
                actor_label=label,
                target_id=ids["target"],
                action=action,
                since=times["since"],
                until=times["until"],
            )

        ctx.run(self, job, self._filtered, failed=self._filter_failed, group="filter")

    def _filtered(self, flt: AuditFilter) -> None:
        if flt != self.filter:
            self.filter = flt
            self.table.set_source(self._source(flt))
        self.update_status()

    def _filter_failed(self, exc: DomainError) -> bool:
        field = exc.details.get("field") if isinstance(exc, NotFound) else None
        if field:
            self._invalid(field, exc.message.split(": ", 1)[-1])
            return True
        if isinstance(exc, ValidationError):
            key = next(iter(exc.field_errors), "")
            key = {"actor_id": "actor", "target_id": "target"}.get(key, key)
            if key in dict(FILTER_INPUTS):
                self._invalid(key, "; ".join(exc.field_errors[next(iter(exc.field_errors))]))
                return True
        return False

    def _invalid(self, key: str, message: str) -> None:
        self.query_one(f"#audit-{key}", Input).add_class("-bad-filter")
        self.query_one("#status-line", StatusLine).update(f"{key}: {message}")

    def on_lazy_table_loaded(self, message: LazyTable.Loaded) -> None:
        self.update_status()

    def on_lazy_table_highlighted(self, message: LazyTable.Highlighted) -> None:
        self.update_status()

    def update_status(self) -> None:
        cache = self.table.cache
        if cache.exact:
            count = f"{cache.height:,} event{'s' if cache.height != 1 else ''}"
        elif cache.extent:
            count = f"{cache.extent:,}+ events (more load as you scroll)"
        else:
            count = "loading…"
        described = ", ".join(f"{k} {v}" for k, v in self.filter_description().items())
        parts = [count + (f" ({described})" if described else "")]
        if cache.height:
            parts.append(f"row {self.table.cursor_row + 1:,}")
        parts.append("newest first")
        self.query_one("#status-line", StatusLine).update("  ·  ".join(parts))

    def filter_description(self) -> dict[str, str]:
        shown = {}
        for key, _ in FILTER_INPUTS:
            if value := self._value(key):
                shown[key] = value
        return shown if self.filter.query() else {}

    def action_filters(self) -> None:
        self.query_one("#audit-actor", Input).focus()

    def action_clear_filters(self) -> None:
        with self.prevent(Input.Changed):
            for key, _ in FILTER_INPUTS:
                box = self.query_one(f"#audit-{key}", Input)
                box.value = ""
                box.remove_class("-bad-filter")
        self._filtered(AuditFilter())
        self.table.focus()

    def action_refresh(self) -> None:
        self.table.reload()

    def on_database_back(self, message: DatabaseBack) -> None:
        self.table.reload()

    def action_back(self) -> None:
        """Escape: from a filter back to the table; from the table back to the users."""
        if self.focused is not self.table:
            self.table.focus()
        else:
            self.dismiss()

    def on_lazy_table_selected(self, message: LazyTable.Selected) -> None:
        from usermgmt.tui.screens.event import EventScreen

        self.app.push_screen(EventScreen(message.row))

    # ---- verification -----------------------------------------------------------------

    def action_verify(self) -> None:
        if self.verifying:
            return
        self.verifying = True
        self.query_one("#status-line", StatusLine).update("verifying the audit chain…")
        ctx = self.ctx

        def failed(_exc: DomainError) -> bool:
            self.verifying = False
            self.update_status()
            return False

        ctx.run(
            self,
            lambda s: s.audit.verify(ctx.actor),
            self._verified,
            failed=failed,
            group="verify",
        )

    def _verified(self, report: ChainReport) -> None:
        from usermgmt.tui.screens.message import MessageScreen

        self.verifying = False
        self.update_status()
        head = f"Head: {report.head}" if report.head else "The chain head row is missing."
        if report.ok:
            self.app.notify(
                f"Audit chain intact: {report.checked:,} events verified.\n{head}",
                title="Audit chain verified",
                timeout=30,  # long enough to copy the head down
            )
            return
        if report.bad_seq is not None:
            problem = (
                f"The first bad event is seq {report.bad_seq}"
                + (f" (id {report.bad_id})" if report.bad_id else "")
                + f": {report.reason}.\n{report.checked:,} events before it are intact."
            )
        else:
            problem = f"{report.reason}."
        if report.users_without_creation:
            shown = "\n".join(f"  {uid}" for uid in report.users_without_creation)
            more = report.users_without_creation_count - len(report.users_without_creation)
            problem += "\n" + shown + (f"\n  … and {more:,} more" if more > 0 else "")
        self.app.push_screen(
            MessageScreen("Audit chain BROKEN", f"{problem}\n{head}", severity="error")
        )

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "Verify the audit chain", "Recompute every hash (v)", self.action_verify
        )
        yield SystemCommand(
            "Filter the audit log", "Actor, target, action, time (/)", self.action_filters
        )
        yield SystemCommand("Clear audit filters", "(c)", self.action_clear_filters)
        yield SystemCommand("Back to the users", "(escape)", self.action_back)


def _reference(user: UserOut | None) -> str:
    """What the target filter is filled with: the email, or the id when the stored
    email holds characters the field would show escaped (and then not find)."""
    if user is None:
        return ""
    return str(user.id) if has_unsafe(user.email) else user.email
