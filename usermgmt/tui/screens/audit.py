"""The audit log, newest (or oldest) first: filter by actor, target, action and time;
`v` verifies the chain, with progress, and `escape` cancels that. New events come in
on their own every ``ctx.refresh_seconds`` without moving the highlighted one."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, ProgressBar

from usermgmt.core.audit import ChainReport
from usermgmt.core.context import Actor
from usermgmt.core.errors import DomainError, NotFound, ServiceUnavailable, ValidationError
from usermgmt.core.schemas import AuditEventOut, UserOut
from usermgmt.core.text import has_unsafe
from usermgmt.tui import formatting as fmt
from usermgmt.tui.audit_source import AuditSource
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.paging import AuditFilter, PageCache
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


AUDIT_LOG = "audit-log"  # the name the unfiltered audit screen is installed under


def show_audit_log(app: App, ctx: ConsoleContext) -> None:
    """Open the unfiltered audit log. Its screen is made once and kept between visits
    (building one costs more than the 100 ms a key may take), so it comes back with
    its filters, order and highlighted event, and what was written meanwhile."""
    if not app.is_screen_installed(AUDIT_LOG):
        app.install_screen(AuditScreen(ctx), AUDIT_LOG)
    app.push_screen(AUDIT_LOG)


class VerifyCancelled(Exception):
    """Raised from the progress callback to stop a verification the operator cancelled."""

    def __init__(self, checked: int) -> None:
        super().__init__(checked)
        self.checked = checked


class AuditTable(LazyTable):
    """The events table: `G` too goes to the end; where the end is not known yet (a
    filter, not read to the end) it asks the screen to show the oldest first instead."""

    BINDINGS = [Binding("G", "last", "Last", show=False)]

    class EndUnknown(Message):
        pass

    def action_last(self) -> None:
        if self.cache.exact:
            super().action_last()
        else:
            self.post_message(self.EndUnknown())

    def show_source(
        self,
        source: AuditSource,
        rows: Mapping[int, Any],
        *,
        cursor_row: int,
        scroll_y: float,
        total: int | None,
        end: int | None,
    ) -> None:
        """Show ``source`` with the ``rows`` already known by their new index (no flicker,
        no refetch), the cursor on ``cursor_row``, scrolled to ``scroll_y``."""
        size = source.page_size
        cache: PageCache = PageCache(
            page_size=size,
            can_offset=source.can_offset,
            can_reverse=source.can_reverse,
            max_pages=self.max_pages,
            max_cursors=20_000,
        )
        cache.set_total(total)
        height = end if end is not None else total
        near = sorted({i // size for i in rows}, key=lambda p: abs(p - cursor_row // size))
        for page in sorted(near[: self.max_pages]):
            first, last = page * size, page * size + size
            last = min(last, height) if height is not None else last
            if last <= first or any(i not in rows for i in range(first, last)):
                continue
            page_rows = [rows[i] for i in range(first, last)]
            is_end = end is not None and last == end
            cache.store(page, page_rows, None if is_end else str(page_rows[-1].seq))
        self.source, self.cache = source, cache
        self.cursor_row = max(0, min(cursor_row, cache.height - 1))
        self._sync_size()
        self.scroll_to(y=scroll_y, animate=False, immediate=True)
        self._restart()


class AuditScreen(Screen):
    DEFAULT_CSS = """
    AuditScreen #verify-progress { height: 1; padding: 0 1; }
    """
    HELP_TITLE = "Audit log"
    AUTO_FOCUS = "#events"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("slash,f", "filters", "Filter", key_display="/"),
        Binding("v", "verify", "Verify chain"),
        Binding("o", "order", "Oldest/newest first"),
        Binding("c", "clear_filters", "Clear filters", show=False),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx: ConsoleContext, *, target: UserOut | None = None) -> None:
        super().__init__()
        self.ctx = ctx
        self.initial_target = target
        self.filter = AuditFilter(target_id=str(target.id) if target else None)
        self.filter_text = ""
        self.oldest = False
        self._timer: Timer | None = None
        self._live_busy = False
        self.verifying = False
        self._verify_cancel = threading.Event()
        self._verify_seen = (0, 0)  # (checked, total), written by the verifying thread
        self._verify_timer: Timer | None = None
        self._verify_worker = None

    def compose(self) -> ComposeResult:
        yield TopBar("Audit log", self.ctx.where)
        with Horizontal(id="audit-filters"):
            for key, placeholder in FILTER_INPUTS:
                value = _reference(self.initial_target) if key == "target" else ""
                yield Input(value, placeholder=placeholder, id=f"audit-{key}", compact=True)
        yield AuditTable(COLUMNS, self.cell, empty_text="No events match.", id="events")
        yield StatusLine(id="status-line")
        yield KeyFooter()

    @property
    def table(self) -> AuditTable:
        return self.query_one("#events", AuditTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.table.set_source(self._source(self.filter))
        self.update_status()
        if self.ctx.refresh_seconds > 0:
            self.set_interval(self.ctx.refresh_seconds, self.live_refresh)

    def on_screen_resume(self) -> None:
        """Back in front (from a dialog, or a later visit): fetch what was written
        meanwhile; the database may have gone or come back while this was hidden."""
        table = self.table
        if table.source is not None:
            was_paused, table.paused = table.paused, not getattr(self.app, "online", True)
            if was_paused and not table.paused:
                table.reload()
            self.live_refresh()

    def _source(self, flt: AuditFilter, *, top: int | None = None) -> AuditSource:
        ctx = self.ctx
        return AuditSource(ctx.services, ctx.actor, flt, ctx.page_size, oldest=self.oldest, top=top)

    # ---- order and the end -------------------------------------------------------------

    def action_order(self) -> None:
        """Newest first <-> oldest first (from the top of the other end)."""
        self.oldest = not self.oldest
        self.table.set_source(self._source(self.filter))
        self.refresh_bindings()
        self.update_status()

    def on_audit_table_end_unknown(self, message: AuditTable.EndUnknown) -> None:
        """End with the end not known yet: the last row of this order is the first of
        the other, one keyset query away."""
        self.action_order()
        self.notify(
            f"The end is not known yet: showing {'oldest' if self.oldest else 'newest'} "
            "first (o switches back).",
            title="Audit log",
            timeout=4,
        )

    # ---- live data -----------------------------------------------------------------

    def live_refresh(self) -> None:
        """Fetch the events written since the pin and show them, the highlighted event
        kept. Not while a dialog is open, the database is away, or one is running."""
        source = self.table.source
        if (
            self._live_busy
            or self.app.screen is not self
            or not getattr(self.app, "online", True)
            or not isinstance(source, AuditSource)
            or source.pinned is None
        ):
            return
        pinned = source.pinned

        def job(services) -> tuple[int, list[AuditEventOut]] | None:
            head = services.audit.head().seq
            return (head, source.newer(pinned, head)) if head > pinned else None

        def failed(exc: DomainError) -> bool:
            self._live_busy = False
            return not isinstance(exc, ServiceUnavailable)  # only an outage is news

        self._live_busy = True
        self.ctx.run(
            self,
            job,
            lambda found: self._show_newer(source, found),
            failed=failed,
            group="live",
            wait_notice=False,
        )

    def _show_newer(
        self, source: AuditSource, found: tuple[int, list[AuditEventOut]] | None
    ) -> None:
        self._live_busy = False
        table = self.table
        if found is None or table.source is not source:
            return
        head, new = found
        cache, size = table.cache, table.cache.page_size
        known = {
            page * size + i: row
            for page, rows in cache.pages.items()
            if page not in cache.stale
            for i, row in enumerate(rows)
        }
        total = head if not self.filter.query() else None
        end = None
        shift = 0
        if source.oldest:  # new events go after the end, if it is known
            if cache.exact:
                known.update({cache.height + i: e for i, e in enumerate(new)})
                end = cache.end + len(new) if cache.end is not None else None
        else:
            shift = len(new)
            known = {i + shift: row for i, row in known.items()}
            known.update({i: e for i, e in enumerate(reversed(new))})
            end = cache.end + shift if cache.end is not None else None
        # At the very top the new events show there; further down nothing on screen moves.
        scroll = table.scroll_y + (shift if round(table.scroll_y) > 0 else 0)
        table.show_source(
            self._source(self.filter, top=head),
            known,
            cursor_row=table.cursor_row + shift,
            scroll_y=scroll,
            total=total,
            end=end,
        )
        self.update_status()

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
        parts.append("oldest first" if self.oldest else "newest first")
        if not self.verifying:
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
        """Escape: cancels a verification; from a filter back to the table; from the
        table back to the users."""
        if self.verifying:
            self.cancel_verify()
        elif self.focused is not self.table:
            self.table.focus()
        else:
            self.dismiss()

    def on_lazy_table_selected(self, message: LazyTable.Selected) -> None:
        from usermgmt.tui.screens.event import EventScreen

        self.app.push_screen(EventScreen(message.row))

    # ---- verification -----------------------------------------------------------------

    def action_verify(self) -> None:
        """Check the whole chain in a worker; the bar shows events checked of the total
        (through a server, one request: an indeterminate bar). Escape cancels."""
        if self.verifying:
            return
        self.verifying = True
        cancel = self._verify_cancel = threading.Event()
        self._verify_seen = (0, 0)
        self.mount(
            ProgressBar(total=None, show_eta=False, id="verify-progress"),
            before=self.query_one("#status-line"),
        )
        self._show_verify_progress()
        self._verify_timer = self.set_interval(0.1, self._show_verify_progress)
        ctx = self.ctx

        def progress(checked: int, total: int) -> None:
            self._verify_seen = (checked, total)
            if cancel.is_set():
                raise VerifyCancelled(checked)

        def job(services) -> ChainReport | VerifyCancelled:
            try:
                return services.audit.verify(ctx.actor, progress=progress)
            except VerifyCancelled as stopped:
                return stopped

        def failed(_exc: DomainError) -> bool:
            self._verify_ended()
            return False

        self._verify_worker = ctx.run(
            self, job, self._verified, failed=failed, group="verify", wait_notice=False
        )

    def _show_verify_progress(self) -> None:
        checked, total = self._verify_seen
        bar = self.query_one("#verify-progress", ProgressBar)
        if self.ctx.remote:
            text = "Verifying the audit chain on the server…  ·  esc stops waiting"
        elif total:
            bar.update(total=total, progress=checked)
            text = f"Verifying the audit chain: {checked:,} of {total:,} events  ·  esc cancels"
        else:
            text = "Verifying the audit chain…  ·  esc cancels"
        if self._verify_cancel.is_set():
            text = f"Cancelling after {checked:,} events…"
        self.query_one("#status-line", StatusLine).update(text)

    def cancel_verify(self) -> None:
        """Stop the check: here it stops at the next thousand events and says how far it
        got; a server's check is one request, so the console only stops waiting for it."""
        if self.ctx.remote:
            if self._verify_worker is not None:
                self._verify_worker.cancel()  # its answer, if it comes, is dropped
            self._verify_ended()
            self.app.notify(
                "Stopped waiting for the verification; the server may still finish it "
                "(usermgmt audit verify shows the result).",
                title="Verification cancelled",
                severity="warning",
            )
            return
        self._verify_cancel.set()
        self._show_verify_progress()

    def _verify_ended(self) -> None:
        self.verifying = False
        if self._verify_timer is not None:
            self._verify_timer.stop()
            self._verify_timer = None
        self.query("#verify-progress").remove()
        self.update_status()

    def _verified(self, report: ChainReport | VerifyCancelled) -> None:
        from usermgmt.tui.screens.message import MessageScreen

        self._verify_ended()
        if isinstance(report, VerifyCancelled):
            self.app.notify(
                f"Verification cancelled after {report.checked:,} events: nothing concluded.",
                title="Verification cancelled",
                severity="warning",
            )
            return
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
            "Audit log order", "Newest first or oldest first (o)", self.action_order
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
