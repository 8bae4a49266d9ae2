"""`g`: grant and revoke roles, as one change (one audit event, the last admin kept)."""

from __future__ import annotations

from collections.abc import Mapping

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Checkbox, Label, Static

from usermgmt.core.schemas import UserOut
from usermgmt.core.text import printable
from usermgmt.core.vocabulary import ROLE_NAMES
from usermgmt.tui.screens.form import FormScreen, Submit
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog


class RolesScreen(FormScreen[list[str], UserOut | None]):
    """Submits the roles chosen (only when they changed); dismissed with the user
    saved, or None. ``descriptions``: a line under each role."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self, user: UserOut, descriptions: Mapping[str, str], *, submit: Submit[list[str]]
    ) -> None:
        super().__init__(submit)
        self.user = user
        self.descriptions = descriptions

    def compose(self) -> ComposeResult:
        with Dialog(id="roles-form"):
            yield Label(
                printable(f"Roles of {self.user.email}"), classes="dialog-title", markup=False
            )
            for role in ROLE_NAMES:
                yield Checkbox(role, role in self.user.roles, id=f"role-{role}", compact=True)
                yield Static(self.descriptions.get(role, ""), classes="role-help", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(Checkbox).focus()

    def chosen(self) -> list[str]:
        return [r for r in ROLE_NAMES if self.query_one(f"#role-{r}", Checkbox).value]

    def action_save(self) -> None:
        if self.busy:
            return
        roles = self.chosen()
        if set(roles) == set(self.user.roles):
            self.app.notify("Roles unchanged.")
            self.dismiss(None)
            return
        self.submit(roles)
