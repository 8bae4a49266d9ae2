"""The account pages' templates: Jinja2, autoescaped, overridable file by file.

Bundled templates live in ``usermgmt/api/pages/templates/``. With
``USERMGMT_PAGES_TEMPLATES_DIR`` set, a file there is used instead of the bundled
one of the same name (``style.css`` too); files not copied keep the bundled
version. Every template is rendered with sample values when the server starts,
so a broken override stops it with the file's name instead of failing a user.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

import jinja2

from usermgmt.core.errors import ConfigurationError

STYLESHEET = "style.css"
PAGES = ("set_password.html", "verify_email.html", "link_invalid.html", "message.html")


def _bundled() -> Path:
    return Path(str(files("usermgmt.api.pages") / "templates"))


class PageRenderer:
    def __init__(self, override_dir: Path | None = None) -> None:
        self.override_dir = override_dir
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.FileSystemLoader(str(_bundled())))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            auto_reload=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def render(self, name: str, values: dict[str, Any]) -> str:
        return self.env.get_template(name).render(values)

    def stylesheet(self) -> bytes:
        if self.override_dir is not None and (self.override_dir / STYLESHEET).is_file():
            return (self.override_dir / STYLESHEET).read_bytes()
        return (Path(str(files("usermgmt.api.pages") / "static")) / STYLESHEET).read_bytes()

    def check(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        """Render each page with each of ``samples[name]``; ConfigurationError names the
        bad file."""
        for name in PAGES:
            try:
                for values in samples[name]:
                    self.render(name, values)
            except jinja2.TemplateError as exc:
                line = getattr(exc, "lineno", None)
                where = name if line is None else f"{getattr(exc, 'name', None) or name}:{line}"
                raise ConfigurationError(
                    f"USERMGMT_PAGES_TEMPLATES_DIR: template {where}: {exc}"
                ) from None
