"""New user (`n`) and edit user (`e`): one form, validation messages under their fields.

The form only collects what was typed and hands it to its opener, which saves
it (see ``screens.form``); every rule (email format, username characters,
password policy, uniqueness) is the core's, and its
``ValidationError.field_errors`` land under the matching field. Editing sends
only the fields that changed.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal
from textual.widgets import Button, Checkbox, Input, Label, Static

from usermgmt.core.errors import DomainError, EmailExists, UsernameExists, ValidationError
from usermgmt.core.schemas import UserOut
from usermgmt.core.text import printable, printable_lines
from usermgmt.core.vocabulary import ROLE_NAMES
from usermgmt.tui.screens.form import FormScreen, Submit
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField

# Input fields: (core field, label, placeholder)
CREATE_FIELDS = [
    ("email", "Email *", "alice@example.com"),
    ("username", "Username", "3-50 of a-z 0-9 _ . -"),
    ("first_name", "First name", ""),
    ("last_name", "Last name", ""),
]
EDIT_PROFILE_FIELDS = [
    ("profile.phone", "Phone", "+44 20 7946 0000"),
    ("profile.timezone", "Timezone", "Europe/London"),
    ("profile.locale", "Locale", "en_GB"),
    ("profile.avatar_url", "Avatar URL", "https://…"),
]


def field_id(key: str) -> str:
    return "in-" + key.replace(".", "-")


class UserFormScreen(FormScreen[dict[str, Any], UserOut | None]):
    """Create when ``user`` is None, else edit that user. Submits the fields to send;
    dismissed with the user saved, or None."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, user: UserOut | None = None, *, submit: Submit[dict[str, Any]]) -> None:
        super().__init__(submit)
        self.user = user

    @property
    def creating(self) -> bool:
        return self.user is None

    # ---- layout -----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        user = self.user
        title = "New user" if user is None else f"Edit {user.email}"
        with Dialog(classes="-form", id="user-form"):
            yield Label(printable(title), classes="dialog-title", markup=False)
            with Grid(classes="form-grid"):
                for key, label, placeholder in CREATE_FIELDS:
                    value = "" if user is None else printable(getattr(user, key) or "")
                    yield FormField(
                        label,
                        Input(value, placeholder=placeholder, id=field_id(key)),
                        key=key,
                    )
                if user is None:
                    yield FormField(
                        "Password (empty: send an invite)",
                        Input(password=True, id=field_id("password")),
                        key="password",
                    )
                    # No password, no mail, acts through API keys; chosen at creation only.
                    yield FormField(
                        "Kind",
                        Checkbox("Service account", False, id="service", compact=True),
                        key="kind",
                    )
                    # Roles and Account span both columns (their boxes do not fit one at 80).
                    yield FormField(
                        "Roles",
                        Horizontal(
                            *(
                                Checkbox(r, r == "user", id=f"role-{r}", compact=True)
                                for r in ROLE_NAMES
                            ),
                            classes="checks",
                        ),
                        key="roles",
                    )
                else:
                    for key, label, placeholder in EDIT_PROFILE_FIELDS:
                        value = printable(getattr(user.profile, key.split(".", 1)[1]) or "")
                        yield FormField(
                            label,
                            Input(value, placeholder=placeholder, id=field_id(key)),
                            key=key,
                        )
                yield FormField(
                    "Account",
                    Horizontal(
                        Checkbox(
                            "Active",
                            True if user is None else user.is_active,
                            id="is_active",
                            compact=True,
                        ),
                        Checkbox(
                            "Email verified",
                            False if user is None else user.email_verified,
                            id="email_verified",
                            compact=True,
                        ),
                        classes="checks",
                    ),
                    key="account",
                )
            yield Static("", id="form-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Create (ctrl+s)" if user is None else "Save (ctrl+s)",
                    id="save",
                    variant="primary",
                )
                yield Button("Cancel (esc)", id="cancel")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(f"#{field_id('email')}", Input).focus()

    # ---- collecting ----------------------------------------------------------------

    def _text(self, key: str) -> str:
        return self.query_one(f"#{field_id(key)}", Input).value.strip()

    def _checked(self, widget_id: str) -> bool:
        return self.query_one(f"#{widget_id}", Checkbox).value

    def collect(self) -> dict[str, Any]:
        """What to send: for create, everything given; for edit, only what changed."""
        if self.user is None:
            data: dict[str, Any] = {"email": self._text("email")}
            for key in ("username", "first_name", "last_name"):
                if value := self._text(key):
                    data[key] = value
            password = self.query_one(f"#{field_id('password')}", Input).value
            if password:
                data["password"] = password
            data["roles"] = [r for r in ROLE_NAMES if self._checked(f"role-{r}")]
            data["is_active"] = self._checked("is_active")
            data["email_verified"] = self._checked("email_verified")
            if self._checked("service"):
                data["kind"] = "service"
            return data
        user = self.user
        changes: dict[str, Any] = {}
        for key in ("email", "username", "first_name", "last_name"):
            value = self._text(key) or None
            if _edited(value, getattr(user, key)):
                changes[key] = value
        profile: dict[str, Any] = {}
        for key, _label, _ph in EDIT_PROFILE_FIELDS:
            name = key.split(".", 1)[1]
            value = self._text(key) or None
            if _edited(value, getattr(user.profile, name)):
                profile[name] = value
        if profile:
            changes["profile"] = profile
        for key in ("is_active", "email_verified"):
            if self._checked(key) != getattr(user, key):
                changes[key] = self._checked(key)
        return changes

    # ---- saving ----------------------------------------------------------------------

    def action_save(self) -> None:
        if self.busy:
            return
        data = self.collect()
        self.clear_errors()
        if self.user is not None and not data:
            self.app.notify("Nothing changed.")
            self.dismiss(None)
            return
        self.query_one("#save", Button).disabled = True
        self.submit(data)

    def show_refusal(self, exc: DomainError) -> bool:
        self.query_one("#save", Button).disabled = False
        if isinstance(exc, ValidationError):
            self.show_errors(exc.field_errors or {"": [exc.message]})
            return True
        if isinstance(exc, EmailExists):
            self.show_errors({"email": [exc.message]})
        elif isinstance(exc, UsernameExists):
            self.show_errors({"username": [exc.message]})
        return False  # still a toast, by the error table

    def clear_errors(self) -> None:
        for field in self.query(FormField):
            field.set_error(None)
        self.query_one("#form-error", Static).update("")

    def show_errors(self, field_errors: dict[str, list[str]]) -> None:
        fields = {f.key: f for f in self.query(FormField)}
        unplaced: list[str] = []
        first: FormField | None = None
        for key, messages in field_errors.items():
            parts = key.split(".")
            target = fields.get(key) or fields.get(".".join(parts[:2])) or fields.get(parts[0])
            if target is None:
                unplaced.extend(f"{key}: {m}" if key else m for m in messages)
                continue
            target.set_error(messages)
            first = first or target
        self.query_one("#form-error", Static).update(printable_lines("\n".join(unplaced)))
        if first is not None:
            focusable = first.query(Input).first() if first.query(Input) else None
            if focusable is not None:
                focusable.focus()

    # ---- buttons and keys -----------------------------------------------------------


def _edited(value: str | None, stored: str | None) -> bool:
    """Whether a field's text differs from the stored value it was filled with. A stored
    value holding control characters is shown escaped: left as shown, it is unchanged."""
    stored = stored or None
    return value != stored and value != (printable(stored).strip() or None if stored else None)
