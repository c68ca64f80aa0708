"""Languages: gettext catalogs in translations/, one language per request, chosen by `lang=` or the browser.

Views and templates call `_()` (and `ngettext`) from here; `use(lang)` sets the language for the code that
runs inside it (a context variable, so concurrent requests in other threads never mix). The catalogs are the
compiled `messages.mo` files, read with the standard library; Babel is only needed to extract and compile
them (see babel.cfg and translations/README.md).
"""

from __future__ import annotations

import gettext
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache

from app.paths import TRANSLATIONS_DIR

DEFAULT = "en"
# URL code -> (gettext catalog name, name of the language in itself)
LANGUAGES: dict[str, tuple[str, str]] = {
    "en": ("en", "English"),
    "zh-CN": ("zh_CN", "简体中文"),
}
_ALIASES = {
    "en": "en",
    "zh": "zh-CN",
    "zh-cn": "zh-CN",
    "zh-hans": "zh-CN",
    "zh-sg": "zh-CN",
    "zh-hans-cn": "zh-CN",
    "zh-tw": "zh-CN",
    "zh-hk": "zh-CN",
    "zh-hant": "zh-CN",
}

log = logging.getLogger(__name__)
_current: ContextVar[str] = ContextVar("glassbox_language", default=DEFAULT)


def normalize(code: str) -> str | None:
    """A language code as the URL and the browser write it (zh, zh_CN, zh-Hans, en-GB) -> ours, or None."""
    key = code.strip().replace("_", "-").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    primary = key.split("-")[0]
    return _ALIASES.get(primary)


def negotiate(accept_language: str | None) -> str:
    """The best of our languages for an Accept-Language header (weights respected), else English."""
    choices: list[tuple[float, int, str]] = []
    for n, part in enumerate((accept_language or "").split(",")):
        code, _sep, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        if code and weight > 0:
            choices.append((-weight, n, code))
    for _w, _n, code in sorted(choices):
        if found := normalize(code):
            return found
    return DEFAULT


def reader_language(asked: str, accept_language: str | None) -> str:
    """The reader's language: the one `asked` (a URL's `lang=`) if we have it, else the browser's choice."""
    return normalize(asked) or negotiate(accept_language)


@cache
def catalog(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang` (English is the source language: no catalog needed)."""
    name = LANGUAGES.get(lang, (DEFAULT, ""))[0]
    if name == DEFAULT:
        return gettext.NullTranslations()
    path = TRANSLATIONS_DIR / name / "LC_MESSAGES" / "messages.mo"
    try:
        with open(path, "rb") as f:
            return gettext.GNUTranslations(f)
    except OSError:
        log.warning("no %s catalog at %s: showing English instead", lang, path)
        return gettext.NullTranslations()


def current() -> str:
    """The language of the code running now (a URL code such as "zh-CN")."""
    return _current.get()


@contextmanager
def use(lang: str) -> Iterator[None]:
    """Run the body in `lang`."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def _(message: str) -> str:
    """Translate a message into the current language."""
    return catalog(_current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message whose form depends on the number n."""
    return catalog(_current.get()).ngettext(singular, plural, n)


def html_lang() -> str:
    """The value of <html lang> for the current language."""
    return _current.get()


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, where it is shown."""
    return message
