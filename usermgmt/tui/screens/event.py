"""One audit event in full: who, what, when, the changes and the chain hashes."""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from usermgmt.core.schemas import AuditEventOut
from usermgmt.core.text import printable, printable_lines
from usermgmt.tui import formatting as fmt
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog


class EventScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,enter,q", "close", "Close")]

    def __init__(self, event: AuditEventOut) -> None:
        super().__init__()
        self.event = event

    def compose(self) -> ComposeResult:
        e = self.event
        lines = [
            f"seq         {e.seq}",
            f"id          {e.id}",
            f"at          {fmt.stamp(e.at)} UTC",
            f"action      {e.action}",
            f"actor       {e.actor_label}" + (f"  ({e.actor_id})" if e.actor_id else ""),
            f"target      {e.target_id or '—'}",
            f"ip          {e.ip or '—'}",
            f"request id  {e.request_id or '—'}",
            f"prev hash   {e.prev_hash}",
            f"hash        {e.hash}",
            "",
            "changes",
            json.dumps(e.changes, indent=2, ensure_ascii=False, sort_keys=True),
        ]
        with Dialog(classes="-wide", id="event", scrollable=True):
            yield Label(
                printable(f"Audit event {e.seq} · {e.action}"), classes="dialog-title", markup=False
            )
            with Vertical(id="event-body"):
                yield Static(printable_lines("\n".join(lines)), markup=False)
            yield Label("escape to close", classes="dialog-hint")
        yield KeyFooter()

    def action_close(self) -> None:
        self.dismiss(None)
