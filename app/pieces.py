"""Drawn parts of pages, shared by every student who opens the same text and view.

A page's big parts (tokens, overview, detail panel, lens) depend on the text, the view and the language,
and on the sampling controls only through their links. app/service/page.py draws them once for a `Marked`
state, whose links carry a mark where the sampling controls go, keeps them in a BytesCache (the one cache
class, model/cache.py) and fills in each request's own controls (`fill`). A part bigger than an eighth of
the budget is not kept, and requests that miss at once draw it once (single flight).
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, fields, replace
from typing import ClassVar

from app.state import ORDER, SAMPLING, TEMPERATURE, State, quote_value
from model.cache import BytesCache

# Written in a marked state's URLs in place of the sampling controls: letters and digits and "=" only, so no
# quoting or escaping changes it, and no one can guess it.
MARK = f"glassboxsampling{secrets.token_hex(8)}"


@dataclass(frozen=True)
class Marked(State):
    """A state whose URLs carry MARK where the four sampling controls go, to be filled in per request."""

    _order: ClassVar[tuple[str, ...]] = (*ORDER[:4], MARK, *ORDER[4:])

    def sampling_params(self) -> dict[str, str]:
        return {MARK: ""}

    def params(self, **changes: object) -> dict[str, str]:
        if not changes.keys().isdisjoint(SAMPLING):
            raise ValueError("a marked state's sampling controls are filled in later; it cannot change them")
        return super().params(**changes)


def marked(state: State) -> Marked:
    """`state` with its sampling controls left as a mark in every URL."""
    plain = replace(state, temperature=TEMPERATURE[2], top_k=None, top_p=None, seed=0)
    return Marked(**{f.name: getattr(plain, f.name) for f in fields(plain)})


def fill(markup: str, state: State) -> str:
    """Markup drawn for a marked state, with `state`'s sampling controls where the mark is."""
    query = "&amp;".join(f"{key}={quote_value(value)}" for key, value in state.sampling_params().items())
    return markup.replace(f"{MARK}=", query)


def _weight(pieces: dict[str, str]) -> int:
    return sum(sys.getsizeof(markup) for markup in pieces.values()) + 200


class PieceCache(BytesCache[dict[str, str]]):
    """Drawn pieces (name -> markup) per key, up to `max_bytes` in all. Safe to use from many threads."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size=_weight, largest=max_bytes // 8)
