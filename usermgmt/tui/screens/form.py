"""The base of the console's forms: a dialog that collects input; its opener saves it.

A form gets ``submit`` from the screen that opens it. On save it checks only
what needs no core (a number, two passwords alike), calls ``submit(form, data)``
and stays open, busy. The opener runs the core call through its
ConsoleContext, the worker owned by the form (a result for a form closed
meanwhile is dropped), and ends with ``form.dismiss(result)``, or hands a
refusal back with ``form.refused(error)``: a validation error then lands under
the fields and the form stays open with what was typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from textual.screen import ModalScreen
from textual.widgets import Button, Input

from usermgmt.core.errors import DomainError

D = TypeVar("D")  # what the form collects
R = TypeVar("R")  # what it is dismissed with once saved

Submit = Callable[[Any, D], None]  # (the form, its data): the opener's


class FormScreen(ModalScreen[R], Generic[D, R]):
    # The id of the button that does what the form is for, and of its action
    # (``action_<SAVE>``, bound to ctrl+s): that button and enter in a text field run
    # it; any other button, like esc, cancels.
    SAVE = "save"

    def __init__(self, submit: Submit[D]) -> None:
        super().__init__()
        self._submit = submit
        self.busy = False

    def submit(self, data: D) -> None:
        """Hand ``data`` to the opener; the form waits for its answer."""
        self.busy = True
        self._submit(self, data)

    def refused(self, exc: DomainError) -> bool:
        """The core refused: show what belongs in the form; True if nothing else need
        show it (else the error table's toast does too)."""
        self.busy = False
        return self.show_refusal(exc)

    def show_refusal(self, exc: DomainError) -> bool:
        return False

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        getattr(self, f"action_{self.SAVE}")()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == self.SAVE:
            getattr(self, f"action_{self.SAVE}")()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)
