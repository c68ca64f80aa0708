"""Caches bounded by bytes, with single flight: identical concurrent requests compute once (the model runs
once for a trace)."""

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

    def _store(self, key: Hashable, value: V) -> None:
        size = self._size(value)
        if size > self.largest:
            return
        if (old := self._items.pop(key, None)) is not None:
            self._bytes -= old[1]
        self._items[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped


class TraceCache(BytesCache[Trace]):
    """Least-recently-used traces up to `max_bytes`; a trace bigger than the whole budget is not kept."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes, size=lambda trace: trace.nbytes)
