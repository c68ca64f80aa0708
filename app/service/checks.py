"""The checks every way in shares (the page, the exports, the JSON API): is the text usable, does the model
name match, do its tokens fit. Each problem has two wordings: the reader's (translated, for pages and
exports) and the API's (English, terse, stable for scripts)."""

from __future__ import annotations

from dataclasses import dataclass

from app.i18n import N_, _

# kind -> (the page's sentence, translated where it is shown; the API's sentence)
WORDING = {
    "empty": (N_("Type some text for GPT-2 to read."), "text is empty: give some text for GPT-2 to read"),
    "chars": (
        N_("The text has {n} characters; this server takes at most {limit}. Shorten it and try again."),
        "text has {n} characters; the most is {limit}",
    ),
    "no_tokens": (N_("This text gives no tokens; type some words."), "text gives no tokens"),
    "tokens": (
        N_("The text is {n} tokens long; this server takes at most {limit}. Shorten it and try again."),
        "text is {n} tokens; the most is {limit}",
    ),
    "model": (
        N_("This server runs the model {served}, not {asked}; showing {served}."),
        "this server runs the model {served}, not {asked}",
    ),
}


@dataclass(frozen=True)
class Problem:
    """What is wrong with a request's input, with the numbers its sentences quote."""

    kind: str
    n: int = 0
    limit: int = 0
    served: str = ""
    asked: str = ""

    def _params(self) -> dict[str, object]:
        return {"n": self.n, "limit": self.limit, "served": repr(self.served), "asked": repr(self.asked[:80])}

    def reader(self) -> str:
        """The sentence for the page, in the current language (app/i18n.py)."""
        return _(WORDING[self.kind][0]).format(**self._params())

    def english(self) -> str:
        """The sentence for the JSON API."""
        return WORDING[self.kind][1].format(**self._params())


def text_problem(text: str, max_chars: int) -> Problem | None:
    """An empty or over-long text (checked before tokenizing)."""
    if not text.strip():
        return Problem("empty")
    if len(text) > max_chars:
        return Problem("chars", n=len(text), limit=max_chars)
    return None


def model_problem(asked: str, served: str) -> Problem | None:
    """A model name that is not the served model's ('' asks for nothing)."""
    name = asked.strip()
    return Problem("model", served=served, asked=asked) if name and name != served else None


def token_problem(n_tokens: int, limit: int) -> Problem | None:
    """A text that gives no tokens, or more than the server runs."""
    if n_tokens == 0:
        return Problem("no_tokens")
    if n_tokens > limit:
        return Problem("tokens", n=n_tokens, limit=limit)
    return None
