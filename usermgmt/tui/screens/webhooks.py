"""`w`: webhook subscriptions and the deliveries of the highlighted one.

Small on purpose: list, create (the secret shown once), enable/disable, queue a
test event, retry a delivery. Everything else is in `usermgmt webhooks …`.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, DataTable, Input, Label

from usermgmt.core.errors import DomainError, ValidationError
from usermgmt.core.text import printable
from usermgmt.core.webhooks.service import DeliveryOut, WebhookCreated, WebhookOut
from usermgmt.tui import formatting as fmt
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.screens.form import FormScreen, Submit
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.widgets.bars import KeyFooter, StatusLine, TopBar
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField

DELIVERIES_SHOWN = 50


def _cell(value: Any, style: str = "") -> Text:
    """Stored text (URLs, receivers' answers) made safe and shown as it is, never as markup."""
    return Text(printable("" if value is None else str(value)), style=style)


class WebhooksScreen(Screen):
    HELP_TITLE = "Webhooks"
    AUTO_FOCUS = "#webhooks"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("n", "new", "New", tooltip="Subscribe a URL (its secret is shown once)"),
        Binding("e", "toggle", "Enable/disable"),
        Binding("t", "test", "Test", tooltip="Queue a webhook.test event"),
        Binding("r", "retry", "Retry", tooltip="Send the highlighted delivery again"),
        Binding("tab", "switch", "Webhooks/deliveries", show=False),
        Binding("ctrl+r,f5", "refresh", "Refresh", show=False),
    ]

    def __init__(self, ctx: ConsoleContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.webhooks: list[WebhookOut] = []
        self.deliveries: list[DeliveryOut] = []

    def compose(self) -> ComposeResult:
        yield TopBar("Webhooks", self.ctx.where)
        yield DataTable(id="webhooks", cursor_type="row", zebra_stripes=True)
        yield Label("Deliveries of the highlighted webhook, newest first", classes="muted")
        yield DataTable(id="deliveries", cursor_type="row", zebra_stripes=True)
        yield StatusLine(id="status-line")
        yield KeyFooter()

    def on_mount(self) -> None:
        hooks = self.query_one("#webhooks", DataTable)
        hooks.add_columns("URL", "Events", "Enabled", "Failing since", "Description")
        hooks.styles.height = "1fr"
        rows = self.query_one("#deliveries", DataTable)
        rows.add_columns("Event", "Status", "Tries", "Code", "ms", "Created", "Last error")
        rows.styles.height = "2fr"
        hooks.focus()
        self.action_refresh()

    # ---- loading -------------------------------------------------------------------

    def current(self) -> WebhookOut | None:
        table = self.query_one("#webhooks", DataTable)
        if not self.webhooks or table.cursor_row >= len(self.webhooks):
            return None
        return self.webhooks[table.cursor_row]

    def action_refresh(self) -> None:
        ctx = self.ctx
        ctx.run(self, lambda s: s.webhooks.list(ctx.actor).data, self._show_webhooks)

    def _show_webhooks(self, webhooks: list[WebhookOut]) -> None:
        table = self.query_one("#webhooks", DataTable)
        row = table.cursor_row
        self.webhooks = webhooks
        table.clear()
        for w in webhooks:
            table.add_row(
                _cell(w.url),
                _cell(", ".join(w.events)),
                _cell("yes" if w.enabled else "no", "" if w.enabled else "bold red"),
                _cell(fmt.stamp(w.failing_since) if w.failing_since else ""),
                _cell(w.description),
            )
        if webhooks:
            table.move_cursor(row=min(row, len(webhooks) - 1))
        status = f"{len(webhooks)} webhook(s)." if webhooks else "No webhooks: n subscribes one."
        self.query_one("#status-line", StatusLine).update(status)
        self._load_deliveries()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "webhooks":
            self._load_deliveries()

    def _load_deliveries(self) -> None:
        hook = self.current()
        if hook is None:
            self._show_deliveries([])
            return
        ctx, wid = self.ctx, str(hook.id)
        self.ctx.run(
            self,
            lambda s: s.webhooks.deliveries(ctx.actor, wid, limit=DELIVERIES_SHOWN).data,
            self._show_deliveries,
            group="deliveries",
        )

    def _show_deliveries(self, deliveries: list[DeliveryOut]) -> None:
        table = self.query_one("#deliveries", DataTable)
        self.deliveries = deliveries
        table.clear()
        for d in deliveries:
            style = {"failed": "bold red", "pending": "yellow"}.get(d.status, "")
            table.add_row(
                _cell(d.event_type),
                _cell(d.status, style),
                _cell(d.attempts),
                _cell(d.last_status_code),
                _cell(d.latency_ms),
                _cell(fmt.stamp(d.created_at)),
                _cell(d.last_error),
            )

    # ---- actions -------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def action_switch(self) -> None:
        other = "#deliveries" if self.focused is self.query_one("#webhooks") else "#webhooks"
        self.query_one(other, DataTable).focus()

    def action_new(self) -> None:
        self.app.push_screen(WebhookFormScreen(submit=self._create), self._created)

    def _create(self, form: WebhookFormScreen, data: dict[str, Any]) -> None:
        ctx = self.ctx

        def done(created: WebhookCreated) -> None:
            form.dismiss(created)

        ctx.run(
            form,
            lambda s: s.webhooks.create(ctx.actor, ctx.request_context(), data),
            done,
            failed=form.refused,
            group="form",
            exclusive=False,
        )

    def _created(self, created: WebhookCreated | None) -> None:
        if created is None:
            return
        self.action_refresh()
        self.app.push_screen(
            MessageScreen(
                "Webhook created",
                f"Events for {created.webhook.url} are signed with this secret. "
                f"Copy it into the receiving app now: it is not shown again.\n\n{created.secret}",
            )
        )

    def action_toggle(self) -> None:
        hook = self.current()
        if hook is None:
            return
        ctx, wid, enable = self.ctx, str(hook.id), not hook.enabled
        ctx.run(
            self,
            lambda s: s.webhooks.update(ctx.actor, ctx.request_context(), wid, {"enabled": enable}),
            lambda w: self._after(f"{'Enabled' if w.enabled else 'Disabled'} {w.url}."),
        )

    def action_test(self) -> None:
        hook = self.current()
        if hook is None:
            return
        ctx, wid = self.ctx, str(hook.id)
        ctx.run(
            self,
            lambda s: s.webhooks.test(ctx.actor, ctx.request_context(), wid),
            lambda d: self._after(f"Test event {d.webhook_id} queued."),
        )

    def action_retry(self) -> None:
        table = self.query_one("#deliveries", DataTable)
        if not self.deliveries or table.cursor_row >= len(self.deliveries):
            self.app.notify("No delivery is highlighted.", severity="warning")
            return
        ctx, did = self.ctx, str(self.deliveries[table.cursor_row].id)
        ctx.run(
            self,
            lambda s: s.webhooks.retry(ctx.actor, ctx.request_context(), did),
            lambda d: self._after(f"Delivery of {d.event_type} queued again."),
        )

    def _after(self, message: str) -> None:
        self.app.notify(printable(message))
        self.action_refresh()


class WebhookFormScreen(FormScreen[dict[str, Any], WebhookCreated | None]):
    """URL, event types (comma separated; * for all), description."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Create"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, *, submit: Submit[dict[str, Any]]) -> None:
        super().__init__(submit)

    def compose(self) -> ComposeResult:
        with Dialog(id="webhook-form"):
            yield Label("New webhook", classes="dialog-title")
            yield FormField(
                "URL", Input(placeholder="https://app.example/hooks", id="in-url"), key="url"
            )
            yield FormField(
                "Events (comma separated, * for all)",
                Input("*", placeholder="user.created, user.deleted", id="in-events"),
                key="events",
            )
            yield FormField(
                "Description", Input(placeholder="optional", id="in-description"),
                key="description",
            )  # fmt: skip
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#in-url", Input).focus()

    def action_save(self) -> None:
        if self.busy:
            return
        for field in self.query(FormField):
            field.set_error(None)
        value = self.query_one("#in-events", Input).value
        self.submit(
            {
                "url": self.query_one("#in-url", Input).value.strip(),
                "events": [e.strip() for e in value.split(",") if e.strip()],
                "description": self.query_one("#in-description", Input).value.strip(),
            }
        )

    def show_refusal(self, exc: DomainError) -> bool:
        if not isinstance(exc, ValidationError) or not exc.field_errors:
            return False
        shown = False
        for key, messages in exc.field_errors.items():
            name = key.split(".")[0]
            fields = self.query(f"#field-{name}")
            if fields:
                fields.first(FormField).set_error(messages)
                shown = True
        return shown
