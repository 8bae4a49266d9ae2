"""The root group builds a noun's commands only when that noun is looked up.

Typer turns every function of every noun into a Click command before it runs
anything, reading every signature and evaluating its annotations, while a
`users list` needs the users noun alone. The root's ``commands`` is therefore
a mapping that knows every noun's name and builds its group the first time
the group itself is asked for. Listing the names (completion, "did you
mean") builds nothing; ``--help``, which shows each noun's one-line help,
builds them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, ClassVar

from typer.core import TyperCommand, TyperGroup

from usermgmt.cli.errors import UsermgmtGroup

Command = TyperCommand | TyperGroup
Loader = Callable[[], Command]


class LazyCommands(MutableMapping[str, Command]):
    """Commands by name, in a fixed order: those given built, then those built on lookup."""

    def __init__(self, built: MutableMapping[str, Command], loaders: dict[str, Loader]):
        self._built = dict(built)
        self._loaders = dict(loaders)
        self._order = list(dict.fromkeys([*self._built, *self._loaders]))

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            loader = self._loaders.get(name)
            if loader is None:
                raise KeyError(name)
            self._built[name] = loader()
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._built.pop(name, None)
        self._loaders.pop(name, None)
        self._order.remove(name)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._order))

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, name: object) -> bool:
        return name in self._built or name in self._loaders


class LazyGroup(UsermgmtGroup):
    """A root group whose ``loaders`` (set by a subclass) build its noun groups on demand."""

    loaders: ClassVar[dict[str, Loader]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(self.commands, self.loaders)
