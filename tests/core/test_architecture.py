"""House rules checked by parsing imports: dependencies point inward."""

import ast
from pathlib import Path

import usermgmt

PACKAGE = Path(usermgmt.__file__).parent
FACE_LIBS = {"falcon", "waitress", "typer", "rich", "textual"}
FACES = {"cli", "tui", "api"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_top_level) for each import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def _files(sub: str):
    return sorted((PACKAGE / sub).rglob("*.py"))


def test_core_imports_no_face_library_or_face():
    offenders = [
        f"{path.relative_to(PACKAGE)}: {mod}"
        for path in _files("core")
        for mod, _ in _imports(path)
        if mod.split(".")[0] in FACE_LIBS
        or (mod.startswith("usermgmt.") and mod.split(".")[1] in FACES)
    ]
    assert offenders == []


def test_faces_do_not_import_each_other_at_module_level():
    offenders = []
    for face in FACES:
        for path in _files(face):
            for mod, top in _imports(path):
                parts = mod.split(".")
                if parts[0] == "usermgmt" and len(parts) > 1 and parts[1] in FACES - {face}:
                    # The CLI may start the server or the console inside a command body.
                    if face == "cli" and not top:
                        continue
                    offenders.append(f"{path.relative_to(PACKAGE)}: {mod}")
    assert offenders == []
