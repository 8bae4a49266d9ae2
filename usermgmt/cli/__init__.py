"""The admin CLI (`usermgmt`): Typer commands over the ports (core services, or a server).

Layout:

- ``app.py``: the root app, its global options (``--database-url``, ``--context``,
  ``--debug``), the top-level commands (``info``, ``serve``, ``tui``, ``login``,
  ``logout``) and ``SUB_APPS``, the one list of noun sub-apps.
- ``remote.py``: login, logout and remote ``info`` (remote mode, see usermgmt.client).
- ``lazy.py``: the root group, which builds a noun's commands on first use.
- ``collector.py``: the garbage collector paused while a command starts.
- ``commands/<noun>.py``: one ``app = typer.Typer()`` per noun.
- ``output.py``: the ``-o/--output`` and ``-q/--quiet`` options and ``render``,
  which every command that prints records ends in.
- ``errors.py``: the one table from domain errors to exit codes, and the group
  class that prints every error as one line on stderr.
- ``state.py``: per-invocation state: the backend (embedded services or a
  server, chosen by ``usermgmt.client.factory``), settings, the operator actor.

Adding a noun (for example ``mail``): write ``commands/mail.py`` with
``app = typer.Typer(help=..., no_args_is_help=True)``, call the ports
(``usermgmt.core.ports``) on ``state.backend()`` (never knowing whether it is
embedded or remote), act as ``state.actor()`` with ``state.request_context()``,
print with ``output.render``, raise domain errors (never print them), and add
``("mail", "usermgmt.cli.commands.mail")`` to ``SUB_APPS`` in ``app.py`` (a noun's
module is imported when the noun is used, see ``lazy.py``). Then regenerate the docs:
``python -m usermgmt.cli.docs --write docs/cli.md``.

Fast start: command modules import only ``typer`` and this package's light
helpers at module level; the core (SQLAlchemy, pydantic, alembic) is imported
inside command bodies, and the API server and the TUI only inside ``serve``
and ``tui``.
"""
