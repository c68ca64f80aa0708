"""The one object the web app and the CLI talk to: tokenizer, engine and trace cache of one model."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from model.cache import TraceCache
from model.runtime import Engine
from model.sources import LoadedModel
from model.tokenizer import Token
from model.trace import Trace

MAX_PACK = 8  # texts in one model run at most
# ... and at most this many attention cells (new tokens x all keys): the run's attention tensors grow with it
MAX_PACK_CELLS = 16_384


class Gate(Protocol):
    """Where every model run (not a cache hit) waits for its turn. `slot(done)` holds a turn for the body of
    a `with` and gives True; it may stop waiting once `done()` says another run did the work, and then gives
    False. A server implements it with a bounded queue (app/limits.py's RunQueue)."""

    def slot(self, done: Callable[[], bool] | None = None) -> AbstractContextManager[bool]: ...


class NoGate:
    """The gate of a GPT2 outside a server: every run goes at once."""

    @contextmanager
    def slot(self, done: Callable[[], bool] | None = None) -> Iterator[bool]:
        yield True


class _Job:
    """A text waiting for a model run: its traced prefix (or None) and new ids, and the trace to come."""

    def __init__(self, prefix: Trace | None, new: tuple[int, ...]) -> None:
        self.prefix = prefix
        self.new = new
        self.future: Future[Trace] = Future()

    @property
    def past(self) -> int:
        return self.prefix.n_tokens if self.prefix is not None else 0


class GPT2:
    """A loaded model ready to trace text. Thread-safe."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        threads: int = 0,
        cache_bytes: int = 512 * 2**20,
        cache_dir: Path | None = None,
    ) -> None:
        self.loaded = loaded
        self.name = loaded.name
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.engine = Engine.for_model(loaded, threads=threads, cache_dir=cache_dir)
        loaded.release()  # the graph holds the weights now
        self.cache = TraceCache(cache_bytes)
        self.gate: Gate = NoGate()  # every model run happens inside `gate.slot(done)`
        self._waiting: list[_Job] = []
        self._lock = threading.Lock()
        self.runs = 0  # model runs
        self.texts = 0  # texts they traced (more than runs when texts waited together)

    def tokenize(self, text: str) -> list[Token]:
        """Text -> tokens (id, text, display label)."""
        return self.tokenizer.tokens(self.tokenizer.encode(text))

    def trace(self, ids: Sequence[int]) -> Trace:
        """The trace of `ids`, from the cache when possible; extends a cached prefix when one exists."""
        key = tuple(int(i) for i in ids)

        def compute() -> Trace:
            # "Generate" appends one token: reuse the prefix's keys and values instead of starting over
            prefix = self.cache.peek(key[:-1]) if len(key) > 1 else None
            return self._run(_Job(prefix, key[-1:] if prefix is not None else key))

        return self.cache.get(key, compute)

    def _run(self, job: _Job) -> Trace:
        """Wait for a turn at the model; whoever gets one runs every text waiting by then in one graph run
        (up to MAX_PACK texts and MAX_PACK_CELLS): on a busy server, students who press Generate at the same
        moment share one read of the weights."""
        self.engine.check_ids(job.new, job.past)  # a text too long fails alone, not the run it would share
        with self._lock:
            self._waiting.append(job)
        try:
            with self.gate.slot(job.future.done) as holding:
                batch = self._take(job) if holding else []
                if batch:
                    self._run_batch(batch)
        finally:
            with self._lock:
                if job in self._waiting:  # refused by the gate (busy): no one will run it
                    self._waiting.remove(job)
        return job.future.result()

    def _take(self, job: _Job) -> list[_Job]:
        """This job (if no one took it yet) and the others waiting, first come first, within the bounds."""
        with self._lock:
            if job not in self._waiting:
                return []
            batch, n, p = [job], len(job.new), job.past
            for other in self._waiting:
                if len(batch) == MAX_PACK:
                    break
                n2, p2 = n + len(other.new), p + other.past
                if other is not job and n2 * (n2 + p2) <= MAX_PACK_CELLS:
                    batch.append(other)
                    n, p = n2, p2
            for taken in batch:
                self._waiting.remove(taken)
            return batch

    def _run_batch(self, batch: list[_Job]) -> None:
        try:
            traces = self.engine.run_many([(j.prefix, j.new) for j in batch])
        except BaseException as err:
            for j in batch:
                j.future.set_exception(err)
            raise
        with self._lock:
            self.runs += 1
            self.texts += len(batch)
        for j, trace in zip(batch, traces, strict=True):
            j.future.set_result(trace)
