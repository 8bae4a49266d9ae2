"""A user's API keys on the detail screen: `K` makes one (its secret shown once, in a
dialog), Enter on a key revokes it (asks first)."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Button, Input, Label, SelectionList, Static

from usermgmt.core.errors import DomainError, ValidationError
from usermgmt.core.key_schemas import ApiKeyCreated, ApiKeyOut
from usermgmt.core.schemas import UserOut
from usermgmt.core.text import printable
from usermgmt.core.vocabulary import API_SCOPES, SCOPE_DESCRIPTIONS
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.screens.confirm import ConfirmScreen
from usermgmt.tui.screens.form import FormScreen, Submit
from usermgmt.tui.screens.message import MessageScreen
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField

# K, not k: k moves up in the users list, and must not make a key by habit here.
KEY_BINDING = Binding("K", "new_key", "New key", tooltip="Create an API key for this user")


class KeyFormScreen(FormScreen[dict[str, Any], ApiKeyCreated | None]):
    """Name, scopes and expiry of a new key; dismissed with what the core made, or None."""

    SAVE = "create"

    BINDINGS = [
        Binding("ctrl+s", "create", "Create"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, user: UserOut, *, submit: Submit[dict[str, Any]]) -> None:
        super().__init__(submit)
        self.user = user

    def compose(self) -> ComposeResult:
        with Dialog(classes="-form", id="key-form"):
            yield Label("New API key", classes="dialog-title")
            yield Static(
                printable(
                    f"For {self.user.username or self.user.email}. It acts with its scopes "
                    "and this user's roles at the time of use; its secret is shown once."
                ),
                classes="dialog-body",
                markup=False,
            )
            yield FormField("Name", Input(id="key-name", max_length=100), key="name")
            yield FormField(
                "Scopes",
                SelectionList[str](
                    *((f"{s}  {SCOPE_DESCRIPTIONS[s]}", s) for s in API_SCOPES), id="key-scopes"
                ),
                key="scopes",
            )
            yield FormField(
                "Expires in days (empty: never)",
                Input(id="key-expires", type="integer", placeholder="never"),
                key="expires_in_days",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create (ctrl+s)", id="create", variant="primary")
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#key-name", Input).focus()

    def action_create(self) -> None:
        if self.busy:
            return
        for field in self.query(FormField):
            field.set_error(None)
        data: dict[str, Any] = {
            "name": self.query_one("#key-name", Input).value,
            "scopes": list(self.query_one("#key-scopes", SelectionList).selected),
            "user_id": str(self.user.id),
        }
        days = self.query_one("#key-expires", Input).value.strip()
        if days:
            try:
                data["expires_in_days"] = int(days)
            except ValueError:
                self.query_one("#field-expires_in_days", FormField).set_error(
                    ["A whole number of days, or empty"]
                )
                return
        self.submit(data)

    def show_refusal(self, exc: DomainError) -> bool:
        if not isinstance(exc, ValidationError) or not exc.field_errors:
            return False
        fields = {f.key: f for f in self.query(FormField)}
        shown = False
        for name, messages in exc.field_errors.items():
            field = fields.get(name.split(".")[0])
            if field is not None:
                field.set_error(messages)
                shown = True
        return shown


class KeyActions:
    """Mixin for the detail screen: make and revoke the shown user's keys. The screen
    calls ``keys_changed()`` after each change (it reloads)."""

    app: App[Any]
    ctx: ConsoleContext
    user: UserOut

    def keys_changed(self) -> None:
        raise NotImplementedError

    def action_new_key(self) -> None:
        self.app.push_screen(KeyFormScreen(self.user, submit=self._create_key), self._key_made)

    def _create_key(self, form: KeyFormScreen, data: dict[str, Any]) -> None:
        ctx = self.ctx

        def done(created: ApiKeyCreated) -> None:
            form.dismiss(created)

        self.ctx.run(
            form,
            lambda s: s.api_keys.create(ctx.actor, ctx.request_context(), data),
            done,
            failed=form.refused,
            group="form",
            exclusive=False,
        )

    def _key_made(self, created: ApiKeyCreated | None) -> None:
        if created is None:
            return
        self.keys_changed()
        self.app.push_screen(
            MessageScreen(
                f"API key {created.key.name} created",
                "Copy the secret now: it is not shown again.\n\n"
                f"{created.secret}\n\n"
                f"Scopes: {', '.join(created.key.scopes)}",
            )
        )

    def revoke_key(self, key: ApiKeyOut) -> None:
        if key.state == "revoked":
            self.app.notify(f"{printable(key.name)} is already revoked.")
            return
        ctx, kid = self.ctx, str(key.id)

        def answered(yes: bool | None) -> None:
            if not yes:
                return

            def done(_revoked: bool) -> None:
                self.app.notify(f"Revoked the API key {printable(key.name)}.")
                self.keys_changed()

            self.ctx.run(
                self,  # type: ignore[arg-type]
                lambda s: s.api_keys.revoke(ctx.actor, ctx.request_context(), kid),
                done,
                group="user-action",
                exclusive=False,
            )

        self.app.push_screen(
            ConfirmScreen(
                "Revoke this API key?",
                f"{key.name} ({key.prefix}…) stops working on its next use, on every server.",
                "Revoke",
            ),
            answered,
        )
