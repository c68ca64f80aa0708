"""Drawn parts of pages, shared by every student who opens the same text and view.

A page's big parts (tokens, overview, detail panel, lens) depend on the text, the view and the language,
and on the sampling controls only through their links. app/routes/pages.py draws them once with those
controls left as a mark and keeps them here; each request fills in its own. Bounded by bytes, least
recently used first out, like the trace cache (the same class); a part bigger than an eighth of the
budget is not kept, and requests that miss at once draw it once.
"""

from __future__ import annotations

import sys

from model.cache import BytesCache


def _weight(pieces: dict[str, str]) -> int:
    return sum(sys.getsizeof(markup) for markup in pieces.values()) + 200


class PieceCache(BytesCache[dict[str, str]]):
    """Drawn pieces (name -> markup) per key, up to `max_bytes` in all. Safe to use from many threads."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size=_weight, largest=max_bytes // 8)
