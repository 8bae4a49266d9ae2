"""House rules checked by parsing the source: dependencies point inward, faces are thin.

- The core imports the standard library, itself and the libraries of CORE_LIBRARIES,
  each there for a reason; never a face or a face's library.
- The core reads the time and makes ids only through its injected clock and id
  source (core.clock, core.ids): nowhere else does it ask the system for either.
- No face holds SQL: no database library, no statement run, no SQL text.
- Faces use the services alone: from the core they import its public surface
  (FACE_CORE_API), never the models, the database layer or the settings
  (the composition entry points of ENTRY_POINTS load the settings and hand them
  on unread), and they never reach past a service (``services.db``,
  ``services.settings``, ``mail.transport``) or read a setting.
- Faces import each other only where the CLI starts the server or the console:
  inside its ``serve`` and ``tui`` commands.
- Tests mirror the package: a test file lives in the tests folder of the package it
  tests (tests/README.md).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import usermgmt

PACKAGE = Path(usermgmt.__file__).parent
TESTS = Path(__file__).resolve().parents[1]
FACE_LIBS = {"falcon", "waitress", "typer", "rich", "textual"}
FACES = ("api", "cli", "tui")

# Beyond the standard library, what the core may import, and why.
CORE_LIBRARIES = {
    "sqlalchemy": "the models, the database layer and every query",
    "alembic": "schema migrations (core.migrate)",
    "pydantic": "input validation and output shapes (core.schemas)",
    "pydantic_settings": "settings read from the environment (core.config)",
    "email_validator": "email address syntax (core.schemas.Email)",
    "bcrypt": "password hashes (core.passwords)",
    "zxcvbn": "password strength (core.passwords)",
    "jwt": "signed access tokens (core.secrets)",
    "platformdirs": "the data directory (core.config)",
    "limits": "rate strings in the settings; the database's rate-limit store",
    "pyotp": "TOTP codes of the second factor (core.services.mfa)",
    "segno": "the QR code of a TOTP enrolment (core.services.mfa)",
    "cryptography": "secrets encrypted at rest: TOTP (core.mfa_keys), webhook signing "
    "secrets (core.webhooks.signing)",
    "httpx": "webhook deliveries (core.webhooks.delivery)",
}

# What a face may import from the core: its public surface.
FACE_CORE_API = {
    "usermgmt.core.context": "who acts, and from where",
    "usermgmt.core.errors": "the domain errors each face maps through its one table",
    "usermgmt.core.schemas": "the input and output shapes",
    "usermgmt.core.key_schemas": "the input and output shapes of API keys",
    "usermgmt.core.mfa_schemas": "the input and output shapes of the second factor",
    "usermgmt.core.text": "stored text made safe to display",
    "usermgmt.core.formats": "the CSV, JSON and JSON lines every face reads and writes",
    "usermgmt.core.vocabulary": "the role and status words",
    "usermgmt.core.status": "the status rule, for a screen's own clock",
    "usermgmt.core.ids": "the type of the services' id source (``services.ids``)",
    "usermgmt.core.passwords": "the password policy's figures, quoted in the API's docs",
    "usermgmt.core.audit": "the audit chain's head and report",
    "usermgmt.core.mail": "the outbox deliverer a server runs",
    "usermgmt.core.webhooks": "the webhooks' shapes, and the deliverer a server runs",
    "usermgmt.core.services": "the services (and, in their modules, the types they return)",
    "usermgmt.core.ports": "the typed seam both backends (services, remote client) implement",
    "usermgmt.core.results": "what the ports return besides the schemas' models",
}
# Service modules that are the services' building blocks (they take a database
# session), not services.
SERVICE_INTERNALS = {"accounts", "base", "credentials", "guards", "outbox", "user_queries"}
# The composition entry points may import the settings (their type, and loading
# them) to build services or hand them on; they read no setting themselves.
ENTRY_POINTS = {
    "cli/state.py": "the CLI's composition root",
    "api/server.py": "`python -m usermgmt.api.server` and the server processes",
    "tui/app.py": "`python -m usermgmt.tui.app` and run_tui(settings)",
    "tui/start.py": "the console's head start builds its services",
}
ENTRY_POINT_NAMES = {"Settings", "load_settings"}
# What is behind a service: a face never touches these attributes of the services.
BEHIND_THE_SERVICES = {"db", "settings", "keys"}
SQL_LIBRARIES = {"sqlalchemy", "alembic", "psycopg", "psycopg2", "sqlite3"}
SQL_CALLS = {"execute", "executemany", "executescript", "exec_driver_sql"}
SQL_TEXT = re.compile(
    r"\b(SELECT\s[\s\S]*\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM"
    r"|CREATE\s+(TABLE|INDEX)|ALTER\s+TABLE|DROP\s+(TABLE|INDEX))\b"
)
# Where one face may import another: the CLI commands that start the server or the console.
FACE_MEETING_POINTS = {("cli/app.py", "serve"), ("cli/app.py", "tui")}


@dataclass(frozen=True)
class Import:
    module: str  # absolute, a submodule when ``from package import module``
    names: tuple[str, ...]  # what ``from … import`` took ((): a plain import)
    function: str | None  # the outermost function it is in (None: module level)
    line: int


def _is_module(dotted: str) -> bool:
    parts = dotted.split(".")
    if parts[0] != "usermgmt":
        return False
    path = PACKAGE.joinpath(*parts[1:])
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _package_of(path: Path) -> list[str]:
    parts = ["usermgmt", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts if path.name == "__init__.py" else parts[:-1]


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


@functools.cache
def _imports(path: Path) -> list[Import]:
    tree = _tree(path)
    found: list[Import] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = function
            if function is None and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if isinstance(child, ast.Import):
                found.extend(Import(a.name, (), inner, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolved against the file's package
                    package = _package_of(path)[: len(_package_of(path)) - (child.level - 1)]
                    base = ".".join([*package, *([base] if base else [])])
                names = tuple(a.name for a in child.names)
                submodules = [n for n in names if _is_module(f"{base}.{n}")]
                found.extend(Import(f"{base}.{n}", (), inner, child.lineno) for n in submodules)
                rest = tuple(n for n in names if n not in submodules)
                if rest or not submodules:
                    found.append(Import(base, rest, inner, child.lineno))
            visit(child, inner)

    visit(tree, None)
    return found


def _files(sub: str) -> list[Path]:
    return sorted((PACKAGE / sub).rglob("*.py"))


def _where(path: Path, line: int) -> str:
    return f"{path.relative_to(PACKAGE)}:{line}"


# ---- the core -----------------------------------------------------------------------


def test_core_imports_no_face_library_or_face():
    offenders = [
        f"{_where(path, i.line)}: {i.module}"
        for path in _files("core")
        for i in _imports(path)
        if i.module.split(".")[0] in FACE_LIBS
        or (i.module.startswith("usermgmt.") and i.module.split(".")[1] in FACES)
    ]
    assert offenders == []


def test_core_imports_only_the_standard_library_itself_and_its_allow_list():
    used: set[str] = set()
    offenders = []
    for path in _files("core"):
        for i in _imports(path):
            top = i.module.split(".")[0]
            if top == "usermgmt":
                # Itself, and the package's version.
                if not (i.module == "usermgmt" or i.module.startswith("usermgmt.core")):
                    offenders.append(f"{_where(path, i.line)}: {i.module}")
            elif top in CORE_LIBRARIES:
                used.add(top)
            elif top not in sys.stdlib_module_names:
                offenders.append(f"{_where(path, i.line)}: {i.module}")
    assert offenders == []
    # A library no module imports any more leaves the list too.
    assert used == set(CORE_LIBRARIES)


# Where the core may ask the system for the time or for random ids, and why.
TIME_AND_ID_SOURCES = {
    "core/clock.py": "SystemClock, the production clock",
    "core/ids.py": "RandomIds, the production id source",
}
# What asks the system: a call of a module's function, or the function itself handed on
# (a column default). time.monotonic stays allowed: it measures durations, not the present.
SYSTEM_TIME_AND_IDS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("os", "urandom"),
}
BARE_SYSTEM_NAMES = {"utcnow", "uuid1", "uuid4", "urandom"}


def _asks_the_system(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute):
        return (_tail_name(node.value), node.attr) in SYSTEM_TIME_AND_IDS or (
            node.attr in BARE_SYSTEM_NAMES
        )
    return isinstance(node, ast.Name) and node.id in BARE_SYSTEM_NAMES


def test_core_takes_time_and_ids_from_its_clock_and_id_source_only():
    offenders = [
        f"{_where(path, node.lineno)}: {ast.unparse(node)}"
        for path in _files("core")
        if str(path.relative_to(PACKAGE)) not in TIME_AND_ID_SOURCES
        for node in ast.walk(_tree(path))
        if _asks_the_system(node)
    ]
    assert offenders == []


def test_the_time_and_id_rule_sees_what_it_forbids():
    """The rule above is not vacuous: each way of asking the system is caught."""
    caught = [
        "datetime.now(UTC)",
        "datetime.datetime.utcnow()",
        "date.today()",
        "time.time()",
        "uuid.uuid4()",
        "uuid4()",
        "os.urandom(16)",
        "utcnow()",
        "mapped_column(Uuid, default=uuid.uuid4)",
    ]
    for source in caught:
        assert any(map(_asks_the_system, ast.walk(ast.parse(source)))), source
    allowed = ["self.clock.now()", "self.ids.new_uuid()", "time.monotonic()", "uuid.UUID(x)"]
    for source in allowed:
        assert not any(map(_asks_the_system, ast.walk(ast.parse(source)))), source
    for path in TIME_AND_ID_SOURCES:
        assert (PACKAGE / path).exists(), path


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_services_use_each_other_through_public_names_only():
    """Shared account operations have public homes (services.accounts): no service calls
    another's private methods or imports a private name of another module."""
    offenders = []
    for path in [*_files("core/services"), *_files("core/mail")]:
        for i in _imports(path):
            if i.module.startswith("usermgmt.") and any(map(_private, i.names)):
                offenders.append(f"{_where(path, i.line)}: {i.module} {', '.join(i.names)}")
        for node in ast.walk(_tree(path)):
            held = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            if held and _private(node.attr) and _tail_name(node.value.value) == "self":
                offenders.append(f"{_where(path, node.lineno)}: {ast.unparse(node)}")
    assert offenders == []


# ---- the faces ----------------------------------------------------------------------


def _sql_in(path: Path) -> list[str]:
    found = [
        f"{_where(path, i.line)}: imports {i.module}"
        for i in _imports(path)
        if i.module.split(".")[0] in SQL_LIBRARIES
    ]
    for node in ast.walk(_tree(path)):
        call = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if call and node.func.attr in SQL_CALLS:
            found.append(f"{_where(path, node.lineno)}: .{node.func.attr}()")
        text = isinstance(node, ast.Constant) and isinstance(node.value, str)
        if text and SQL_TEXT.search(node.value):
            found.append(f"{_where(path, node.lineno)}: SQL text {node.value[:40]!r}")
    return found


@pytest.mark.parametrize("face", FACES)
def test_no_face_holds_sql(face):
    assert [line for path in _files(face) for line in _sql_in(path)] == []


def _tail_name(node: ast.AST) -> str | None:
    """``services`` for ``services``, ``self.services`` or ``self._services``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _reaching_past_the_services(path: Path) -> list[str]:
    found = []
    for node in ast.walk(_tree(path)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = _tail_name(node.value)
        if owner is None:
            continue
        where = _where(path, node.lineno)
        if owner.lstrip("_") == "services" and node.attr in BEHIND_THE_SERVICES:
            found.append(f"{where}: services.{node.attr}")
        elif owner == "mail" and node.attr == "transport":
            found.append(f"{where}: mail.transport")
        elif owner.lstrip("_") == "settings":
            found.append(f"{where}: reads settings.{node.attr}")
    return found


def _core_imports_of_a_face(path: Path) -> list[str]:
    relative = path.relative_to(PACKAGE).as_posix()
    found = []
    for i in _imports(path):
        if not i.module.startswith("usermgmt.core"):
            continue
        where = f"{_where(path, i.line)}: {i.module}"
        if i.module == "usermgmt.core.config":
            if relative not in ENTRY_POINTS or not set(i.names) <= ENTRY_POINT_NAMES:
                found.append(f"{where} {', '.join(i.names)}")
            continue
        parts = i.module.split(".")
        if i.module.startswith("usermgmt.core.services"):
            if len(parts) > 3 and parts[3] in SERVICE_INTERNALS:
                found.append(where)
            continue
        if ".".join(parts[:3]) not in FACE_CORE_API:
            found.append(where)
    return found


@pytest.mark.parametrize("face", FACES)
def test_faces_use_the_services_only(face):
    offenders = [
        line
        for path in _files(face)
        for line in (*_core_imports_of_a_face(path), *_reaching_past_the_services(path))
    ]
    assert offenders == []


def test_faces_import_each_other_only_where_the_cli_starts_the_server_or_the_console():
    offenders = []
    for face in FACES:
        for path in _files(face):
            relative = path.relative_to(PACKAGE).as_posix()
            for i in _imports(path):
                parts = i.module.split(".")
                if parts[0] != "usermgmt" or len(parts) < 2 or parts[1] not in FACES:
                    continue
                if parts[1] == face or (relative, i.function) in FACE_MEETING_POINTS:
                    continue
                offenders.append(f"{_where(path, i.line)}: {i.module}")
    assert offenders == []


# ---- the tests ----------------------------------------------------------------------


def test_each_test_file_lives_in_the_folder_of_a_package_it_tests():
    """tests/<path>/test_*.py tests usermgmt/<path>/ (a package); each folder is a test
    package too, so two files may share a name in different folders. tests/deploy tests
    what the repository's deploy/ folder ships (units, rules, the image), not a package."""
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        folder = path.parent.relative_to(TESTS)
        if folder == Path("deploy"):
            continue
        if not folder.parts or not (PACKAGE.joinpath(*folder.parts) / "__init__.py").exists():
            offenders.append(f"{path.relative_to(TESTS)}: no package usermgmt/{folder}")
        elif not (path.parent / "__init__.py").exists():
            offenders.append(f"{path.relative_to(TESTS)}: tests/{folder} has no __init__.py")
    assert offenders == []
    assert len(list(TESTS.rglob("test_*.py"))) > 50  # the rule saw the suite
