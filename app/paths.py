"""Where the templates, the CSS and the translations live, in a checkout and in an installed wheel alike.

The repository keeps `templates/`, `static/` and `translations/` at the top level; the wheel installs them as
`app/templates`, `app/static` and `app/translations` (see pyproject.toml's package-dir), so look beside this
file first.
"""

from __future__ import annotations

from pathlib import Path

_APP = Path(__file__).resolve().parent


def _find(name: str, required: bool = True) -> Path:
    for candidate in (_APP / name, _APP.parent / name):  # wheel install, then checkout
        if candidate.is_dir():
            return candidate
    if not required:
        return _APP.parent / name
    raise FileNotFoundError(f"no {name}/ beside {_APP} or in {_APP.parent}: is Glassbox installed whole?")


TEMPLATES_DIR: Path = _find("templates")
STATIC_DIR: Path = _find("static")
# the gettext catalogs (app/i18n.py); without them the pages are in English only
TRANSLATIONS_DIR: Path = _find("translations", required=False)
