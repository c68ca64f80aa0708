"""Drawn parts of pages, shared by every student who opens the same text and view.

A page's big parts (tokens, overview, detail panel, lens) depend on the text, the view and the language,
and on the sampling controls only through their links. app/routes/pages.py draws them once with those
controls left as a mark and keeps them here; each request fills in its own. Bounded by bytes, least
recently used first out, like the trace cache; a part bigger than an eighth of the budget is not kept.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable


class PieceCache:
    """Drawn pieces (name -> markup) per key, up to `max_bytes` in all. Safe to use from many threads."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[dict[str, str], int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, draw: Callable[[], dict[str, str]]) -> dict[str, str]:
        """The pieces for `key`, drawn by `draw` when they are not kept. Two requests that miss at once
        both draw (a page is cheap next to a model run, which the trace cache runs once)."""
        with self._lock:
            if (found := self._items.get(key)) is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        pieces = draw()
        size = sum(sys.getsizeof(markup) for markup in pieces.values()) + 200
        if size > self.max_bytes // 8:
            return pieces
        with self._lock:
            if (old := self._items.pop(key, None)) is not None:
                self._bytes -= old[1]
            self._items[key] = (pieces, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._items.popitem(last=False)
                self._bytes -= dropped
        return pieces
