"""The root group's nouns: all named, in order, each built on its first lookup only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from usermgmt.cli.app import PROG_NAME, SUB_APPS, app
from usermgmt.cli.lazy import LazyCommands


def _command(name: str):
    return SimpleNamespace(name=name)


def test_names_in_order_and_each_noun_built_once_on_lookup():
    built: list[str] = []

    def loader(name):
        def load():
            built.append(name)
            return _command(name)

        return load

    commands = LazyCommands({"info": _command("info")}, {n: loader(n) for n in ("b", "a")})
    assert list(commands) == ["info", "b", "a"] and len(commands) == 3
    assert "a" in commands and "zz" not in commands
    assert built == []  # naming them built nothing
    assert commands["a"].name == "a" and commands.get("a") is commands["a"]
    assert built == ["a"]
    assert list(commands) == ["info", "b", "a"]  # the order does not follow the building
    assert commands.get("zz") is None
    commands["new"] = _command("new")
    assert list(commands)[-1] == "new"
    del commands["b"]
    assert list(commands) == ["info", "a", "new"] and built == ["a"]
    with pytest.raises(KeyError):
        del commands["b"]


def test_the_root_help_lists_every_noun_with_its_help():
    result = CliRunner().invoke(app, ["--help"], prog_name=PROG_NAME)
    assert result.exit_code == 0, result.output
    section = result.stdout.split("Commands:\n")[1].split("\n\n")[0]
    listed = [line.split()[0] for line in section.splitlines()]
    assert listed[:5] == ["info", "serve", "tui", "login", "logout"]
    assert listed[5 : 5 + len(SUB_APPS)] == [name for name, _ in SUB_APPS]


def test_a_mistyped_noun_gets_a_suggestion():
    result = CliRunner().invoke(app, ["user", "list"], prog_name=PROG_NAME)
    assert result.exit_code == 2
    assert "Did you mean 'users'" in result.output
