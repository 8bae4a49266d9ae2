"""Messages the console posts between its parts (Textual ``Message`` subclasses).

A widget's own messages (``LazyTable.Selected``, …) stay nested in its class, as
Textual's widgets do; the ones here are the console's, not one widget's.
"""

from __future__ import annotations

from textual.message import Message


class DatabaseBack(Message):
    """Sent to every screen when the database answers again: reload what you show."""
