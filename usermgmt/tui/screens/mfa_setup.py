"""Setting up two-step sign-in for the person the remote console is signed in as.

The server makes a secret (inactive until confirmed); this screen draws its QR code,
shows the secret in groups of four for typing and the ``otpauth://`` URI as a fallback,
and asks for a code from the app. A wrong code says so and keeps the screen; a right
one turns the factor on and shows the ten recovery codes once. The secret is on this
screen only: never in a notification or the log. A session the server's role policy
holds back (``required``) cannot skip this screen: it is the only way on.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from usermgmt.core.errors import DomainError, InvalidMfaCode, ValidationError
from usermgmt.core.mfa_schemas import RecoveryCodes, TotpSetup
from usermgmt.core.text import printable
from usermgmt.tui.context import ConsoleContext
from usermgmt.tui.messages import DatabaseBack
from usermgmt.tui.screens.mfa_codes import RecoveryCodesScreen
from usermgmt.tui.widgets.bars import KeyFooter
from usermgmt.tui.widgets.dialog import Dialog
from usermgmt.tui.widgets.form import FormField
from usermgmt.tui.widgets.qr import QrCode

WRONG_CODE = "That code is not right: type the six digits the app shows now"
REQUIRED = "The server asks this account for a second factor before anything else. "
SCAN = "Scan the code with an authenticator app, or type this key:"


def grouped(secret: str, size: int = 4) -> str:
    return " ".join(secret[i : i + size] for i in range(0, len(secret), size))


class MfaSetupScreen(Screen[bool]):
    """Dismissed with True once the factor is on, False when left (or refused).

    A full screen rather than a dialog: the QR code takes the terminal's whole height
    on the left (24 rows at 80x24), and the rest (a ``Dialog`` and the footer, which
    is under it rather than across the code) is in the column beside it."""

    DEFAULT_CSS = """
    MfaSetupScreen #setup { height: 1fr; }
    MfaSetupScreen #qr-pane { width: auto; height: 1fr; overflow-y: auto; }
    MfaSetupScreen #setup-side { width: 1fr; min-width: 30; height: 1fr; }
    MfaSetupScreen #secret { text-style: bold; color: $text-accent; }
    MfaSetupScreen #uri { color: $text-muted; }
    """
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]  # app.tcss

    BINDINGS = [
        Binding("ctrl+s", "confirm", "Turn on"),
        Binding("escape", "later", "Later"),
        # Required by the server's policy (check_action): nothing else works until it is
        # on, so esc says so instead, and the footer shows ctrl+q, the way out.
        Binding("escape", "held", "Why not later", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]
    signing_in = True  # the palette offers no two-step commands here

    def __init__(self, ctx: ConsoleContext, *, required: bool = False) -> None:
        super().__init__()
        self.ctx = ctx
        self.required = required
        self.busy = True

    def compose(self) -> ComposeResult:
        with Horizontal(id="setup"):
            yield Vertical(id="qr-pane")
            with Vertical(id="setup-side"):
                with Dialog(id="setup-dialog"):
                    yield Label("Set up two-step sign-in", classes="dialog-title")
                    yield Static(REQUIRED * self.required + SCAN, markup=False)
                    yield Static("Asking the server…", id="secret", markup=False)
                    yield FormField(
                        "Code from the app",
                        Input(id="code", max_length=64, placeholder="123456", disabled=True),
                        key="code",
                    )
                    # Last: the key again, for an app that takes a link (below the field, so
                    # that at 80x24 the key and the field are in view together).
                    yield Static("", id="uri", markup=False)
                    with Horizontal(classes="dialog-buttons"):
                        yield Button("Turn on (ctrl+s)", id="confirm", variant="primary")
                        leave = "Quit (ctrl+q)" if self.required else "Later (esc)"
                        yield Button(leave, id="leave")
                yield KeyFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("held", "quit"):
            return self.required
        if action == "later":
            return not self.required
        return True

    def help_bindings(self) -> list[Binding]:
        """What ? lists: the keys of this screen as it was opened (help.py)."""
        return [b for b in self.BINDINGS if self.check_action(b.action, ()) is not False]

    def on_mount(self) -> None:
        self._ask()

    def on_database_back(self, message: DatabaseBack) -> None:
        """The server answers again (or the console signed in again): ask once more if the
        setup had not come."""
        if not self.query("#qr"):
            self._ask()

    def _ask(self) -> None:
        rc = self.ctx.request_context()
        self.ctx.run(
            self,
            lambda backend: backend.mfa.setup(self.ctx.actor, rc),
            self._show,
            failed=self._setup_refused,
        )

    def _setup_refused(self, exc: DomainError) -> bool:
        if not self.required:
            self.dismiss(False)
        return False  # the error table's toast says why (say, already enabled)

    def _show(self, setup: TotpSetup) -> None:
        pane = self.query_one("#qr-pane", Vertical)
        pane.mount(QrCode(setup.otpauth_uri, max_rows=self.app.size.height, id="qr"))
        self.query_one("#secret", Static).update(printable(grouped(setup.secret)))
        self.query_one("#uri", Static).update(printable(setup.otpauth_uri))
        box = self.query_one("#code", Input)
        box.disabled = False
        box.focus()
        self.busy = False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "confirm":
            self.action_confirm()
        elif self.required:
            self.action_quit()
        else:
            self.action_later()

    def action_confirm(self) -> None:
        if self.busy:
            return
        field = self.query_one("#field-code", FormField)
        code = self.query_one("#code", Input).value.strip()
        if not code:
            field.set_error(["Type the code the app shows"])
            return
        field.set_error(None)
        self.busy = True
        rc = self.ctx.request_context()
        self.ctx.run(
            self,
            lambda backend: backend.mfa.confirm(self.ctx.actor, rc, {"code": code}),
            self._confirmed,
            failed=self._refused,
        )

    def _refused(self, exc: DomainError) -> bool:
        self.busy = False
        if isinstance(exc, InvalidMfaCode | ValidationError):
            box = self.query_one("#code", Input)
            box.value = ""
            box.focus()
            self.query_one("#field-code", FormField).set_error([WRONG_CODE])
            return True
        return False

    def _confirmed(self, codes: RecoveryCodes) -> None:
        self.app.push_screen(
            RecoveryCodesScreen(codes.recovery_codes, title="Two-step sign-in is on"),
            lambda _: self.dismiss(True),
        )

    def action_later(self) -> None:
        self.dismiss(False)

    def action_held(self) -> None:
        self.app.notify(
            "This server lets this account do nothing else until a second factor is set "
            "up. ctrl+q quits the console.",
            title="Two-step sign-in",
            severity="warning",
        )

    def action_quit(self) -> None:
        self.app.exit()  # what the app's ctrl+q (which comes first) does too
