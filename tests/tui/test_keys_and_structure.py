"""Help, the command palette, and the rules of the house for this face."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from usermgmt.tui.screens.help import HelpScreen
from usermgmt.tui.screens.user_form import UserFormScreen
from usermgmt.tui.screens.users import UsersScreen

from .tui_helpers import run_console, seed_users, settle

TUI = Path(__file__).resolve().parents[2] / "usermgmt" / "tui"


def test_help_lists_every_key_of_the_screen(ui_services, make_ui_app):
    seed_users(ui_services, 1)

    app = make_ui_app()

    async def scenario(pilot):
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = [str(w.content) for w in app.screen.query(".help-row")]
        text = "\n".join(rows)
        for expected in (
            "/                  Search",
            "d                  Delete",
            "x                  Show / hide deleted users",
            "o                  Sort by the next column",
            "ctrl+p             Command palette",
            "pagedown           Page down",
        ):
            assert expected in text
        await pilot.press("escape")
        assert isinstance(app.screen, UsersScreen)

    run_console(app, scenario)


def test_command_palette_runs_actions(ui_services, make_ui_app):
    seed_users(ui_services, 1)

    app = make_ui_app()

    async def scenario(pilot):
        await pilot.press("ctrl+p")
        await pilot.press(*"new user")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, UserFormScreen)

    run_console(app, scenario)


def test_quit_key_quits_but_types_in_the_search(make_ui_app):
    app = make_ui_app()

    async def scenario(pilot):
        await pilot.press("slash", "q")
        assert app.screen.query_one("#search").value == "q"
        assert app.is_running
        await pilot.press("escape", "q")
        await pilot.pause()
        assert not app.is_running or app.return_code is not None

    run_console(app, scenario)


FORBIDDEN_CALLS = {"select", "text", "execute", "exec_driver_sql", "scalars", "Session"}
FORBIDDEN_IMPORTS = ("sqlalchemy", "falcon", "waitress", "typer", "usermgmt.api", "usermgmt.cli")


def test_the_console_has_no_sql_and_imports_no_other_face():
    problems = []
    for path in TUI.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                )
                problems += [
                    f"{path.name}: imports {n}" for n in names if n.startswith(FORBIDDEN_IMPORTS)
                ]
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in FORBIDDEN_CALLS:
                    problems.append(f"{path.name}:{node.lineno}: calls {name}()")
                # a unit of work of its own: services.db.read() / .write()
                if (
                    isinstance(func, ast.Attribute)
                    and func.attr in ("read", "write")
                    and isinstance(func.value, ast.Attribute)
                    and func.value.attr == "db"
                ):
                    problems.append(f"{path.name}:{node.lineno}: opens a transaction")
    assert problems == []


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), str(path))


def _imported(tree: ast.AST) -> list[str]:
    """Modules imported, those for type checking only left out."""
    typing_only = {
        id(n)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for n in ast.walk(block)
    }
    names = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            names.append(node.module or "")
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_the_console_reaches_the_core_through_one_context():
    """No module imports the app but for type checking (it is no service locator, and
    nothing imports in a cycle through it); only context.py touches what a face should
    not reach past the services for: model modules, the database layer, settings."""
    problems = []
    for path in TUI.rglob("*.py"):
        tree = _tree(path)
        name = path.relative_to(TUI).as_posix()
        imported = _imported(tree)
        if name != "app.py":
            problems += [f"{name}: imports {m}" for m in imported if m == "usermgmt.tui.app"]
        if name == "context.py":
            continue
        problems += [
            f"{name}: imports {m}"
            for m in imported
            if m in ("usermgmt.core.models", "usermgmt.core.db")
        ]
        problems += [
            f"{name}:{node.lineno}: .{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("db", "settings", "run_core")
        ]
    assert problems == []


def test_no_private_method_of_textual_is_overridden_but_the_exception_hook():
    """Public hooks only (on_click, not _on_click): Textual has none for an exception a
    handler let through, so UserMgmtApp overrides those two private methods alone."""
    import importlib
    import inspect

    from textual.dom import DOMNode

    allowed = {("UserMgmtApp", "_handle_exception"), ("UserMgmtApp", "_fatal_error")}
    found = set()
    for path in TUI.rglob("*.py"):
        module = importlib.import_module(
            "usermgmt.tui." + path.relative_to(TUI).with_suffix("").as_posix().replace("/", ".")
        )
        for cls in vars(module).values():
            if not (isinstance(cls, type) and cls.__module__ == module.__name__):
                continue
            if not issubclass(cls, DOMNode):
                continue
            textual = [k for k in cls.__mro__ if k.__module__.startswith("textual.")]
            for attr, value in vars(cls).items():
                private = attr.startswith("_") and not attr.startswith("__")
                method = inspect.isfunction(value)
                if private and method and any(attr in vars(k) for k in textual):
                    found.add((cls.__name__, attr))
    assert found == allowed


def test_importing_the_package_does_not_import_textual():
    code = "import sys, usermgmt.tui; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_styles_ship_with_the_package():
    assert (TUI / "app.tcss").exists()
    pyproject = (TUI.parents[1] / "pyproject.toml").read_text()
    assert '"tui/*.tcss"' in pyproject
