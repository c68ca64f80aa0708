"""The one cache class: bounded by bytes, least recently used first out, with single flight (identical
concurrent requests compute once: the model runs once for a trace). Traces, drawn page parts and finished
pages are all kept in one (docs/architecture.md, "Serving")."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, TypeVar

from model.trace import Trace

V = TypeVar("V")


class BytesCache(Generic[V]):
    """Least-recently-used values up to `max_bytes` in all, each weighing `size(value)`; a value heavier
    than `largest` (by default the whole budget) is handed out but not kept."""

    def __init__(self, max_bytes: int, size: Callable[[V], int], largest: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.largest = max_bytes if largest is None else largest
        self._size = size
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, Future[V]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, key: Hashable) -> V | None:
        """The cached value for `key`, if any, without computing anything."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found[0]
            return None

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for `key`, computed by `compute` only if no one has it or is computing it."""
        with self._lock:
            if (found := self._items.get(key)) is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return found[0]
            future = self._pending.get(key)
            owner = future is None
            if future is None:
                future = self._pending[key] = Future()
                self.misses += 1
            else:
                self.hits += 1
        if not owner:
            return future.result()
        try:
            value = compute()
        except BaseException as err:
            with self._lock:
                del self._pending[key]
            future.set_exception(err)
            raise
        with self._lock:
            del self._pending[key]
            self._store(key, value)
        future.set_result(value)
        return value

    def put(self, key: Hashable, value: V) -> None:
        """Keep `value` for `key` (computed elsewhere, e.g. a page answered on the event loop)."""
        with self._lock:
            self._store(key, value)

    def grow(self, key: Hashable, delta: int) -> None:
        """The value kept for `key` now weighs `delta` bytes more (or less): re-count it, and drop the least
        recently used values while over the budget. A key not kept (or no longer) is left alone."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return
            self._items[key] = (found[0], found[1] + delta)
            self._bytes += delta
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._items:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

    def _store(self, key: Hashable, value: V) -> None:
        size = self._size(value)
        if size > self.largest:
            return
        if (old := self._items.pop(key, None)) is not None:
            self._bytes -= old[1]
        self._items[key] = (value, size)
        self._bytes += size
        self._evict()


class TraceCache(BytesCache[Trace]):
    """Least-recently-used traces up to `max_bytes`, each weighed with what is kept with it (its memos: the
    pictures drawn from it count too); a trace bigger than the whole budget is not kept."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size=lambda trace: trace.held_bytes)

    def get(self, key: Hashable, compute: Callable[[], Trace]) -> Trace:
        def counted() -> Trace:
            trace = compute()
            # what the trace's memos keep later is counted against this cache's budget
            trace.derived.on_change = trace.views.on_change = lambda delta: self.grow(key, delta)
            return trace

        return super().get(key, counted)
