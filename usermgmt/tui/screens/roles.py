"""`g`: grant and revoke roles, as one change (one audit event, the last admin kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Static

from usermgmt.core.models import SEEDED_ROLES
from usermgmt.core.schemas import ROLE_NAMES, UserOut
from usermgmt.core.text import printable

if TYPE_CHECKING:
    from usermgmt.tui.app import UserMgmtApp


class RolesScreen(ModalScreen[UserOut | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    app: UserMgmtApp

    def __init__(self, user: UserOut) -> None:
        super().__init__()
        self.user = user
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="roles-form"):
            yield Label(
                printable(f"Roles of {self.user.email}"), classes="dialog-title", markup=False
            )
            for role in ROLE_NAMES:
                yield Checkbox(role, role in self.user.roles, id=f"role-{role}")
                yield Static(SEEDED_ROLES.get(role, ""), classes="role-help", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one(Checkbox).focus()

    def chosen(self) -> list[str]:
        return [r for r in ROLE_NAMES if self.query_one(f"#role-{r}", Checkbox).value]

    def action_save(self) -> None:
        if self.busy:
            return
        roles = self.chosen()
        before, after = set(self.user.roles), set(roles)
        if before == after:
            self.app.notify("Roles unchanged.")
            self.dismiss(None)
            return
        self.busy = True
        app, uid = self.app, str(self.user.id)
        granted, revoked = sorted(after - before), sorted(before - after)
        summary = "; ".join(
            part
            for part in (
                f"granted {', '.join(granted)}" if granted else "",
                f"revoked {', '.join(revoked)}" if revoked else "",
            )
            if part
        )

        def done(user: UserOut) -> None:
            app.notify(f"Roles of {user.email}: {summary}.")
            self.dismiss(user)

        def failed(_exc) -> bool:
            self.busy = False
            return False

        app.run_core(
            self,
            lambda: app.services.roles.set(app.actor, app.request_context(), uid, roles),
            done,
            failed=failed,
            group="form",
            exclusive=False,
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
