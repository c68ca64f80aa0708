"""Where the Jinja templates and the CSS live, in a checkout and in an installed wheel alike.

The repository keeps `templates/` and `static/` at the top level; the wheel installs them as
`app/templates` and `app/static` (see pyproject.toml's package-dir), so look beside this file first.
"""

from __future__ import annotations

from pathlib import Path

_APP = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_APP / name, _APP.parent / name):  # wheel install, then checkout
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no {name}/ beside {_APP} or in {_APP.parent}: is Glassbox installed whole?")


TEMPLATES_DIR: Path = _find("templates")
STATIC_DIR: Path = _find("static")
TRANSLATIONS_DIR: Path = _find("translations")
