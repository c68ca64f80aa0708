"""A trace cache bounded by bytes, with single flight: identical concurrent requests run the model once."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future

from model.trace import Trace


class TraceCache:
    """Least-recently-used traces up to `max_bytes`; a trace bigger than the whole budget is not kept."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, Trace] = OrderedDict()
        self._bytes = 0
        self._pending: dict[Hashable, Future[Trace]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, key: Hashable) -> Trace | None:
        """The cached trace for `key`, if any, without computing anything."""
        with self._lock:
            trace = self._items.get(key)
            if trace is not None:
                self._items.move_to_end(key)
            return trace

    def get(self, key: Hashable, compute: Callable[[], Trace]) -> Trace:
        """The trace for `key`, computed by `compute` only if no one has it or is computing it."""
        with self._lock:
            if (trace := self._items.get(key)) is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return trace
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
            trace = compute()
        except BaseException as err:
            with self._lock:
                del self._pending[key]
            future.set_exception(err)
            raise
        with self._lock:
            del self._pending[key]
            self._store(key, trace)
        future.set_result(trace)
        return trace

    def _store(self, key: Hashable, trace: Trace) -> None:
        size = trace.nbytes
        if size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._items.pop(key).nbytes
        self._items[key] = trace
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
