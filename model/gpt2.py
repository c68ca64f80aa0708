"""The one object the web app and the CLI talk to: tokenizer, engine and trace cache of one model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from model.cache import TraceCache
from model.runtime import Engine
from model.sources import LoadedModel
from model.tokenizer import Token
from model.trace import Trace


class GPT2:
    """A loaded model ready to trace text. Thread-safe."""

    def __init__(self, loaded: LoadedModel, *, threads: int = 0, cache_bytes: int = 512 * 2**20,
                 cache_dir: Path | None = None) -> None:  # fmt: skip
        self.loaded = loaded
        self.name = loaded.name
        self.config = loaded.config
        self.tokenizer = loaded.tokenizer
        self.engine = Engine.for_model(loaded, threads=threads, cache_dir=cache_dir)
        loaded.release()  # the graph holds the weights now
        self.cache = TraceCache(cache_bytes)
        # Every model run (not a cache hit) happens inside `gate()`; a server puts a bounded queue here.
        self.gate: Callable[[], AbstractContextManager[object]] = nullcontext

    def tokenize(self, text: str) -> list[Token]:
        """Text -> tokens (id, text, display label)."""
        return self.tokenizer.tokens(self.tokenizer.encode(text))

    def trace(self, ids: Sequence[int]) -> Trace:
        """The trace of `ids`, from the cache when possible; extends a cached prefix when one exists."""
        key = tuple(int(i) for i in ids)

        def compute() -> Trace:
            # "Generate" appends one token: reuse the prefix's keys and values instead of starting over
            prefix = self.cache.peek(key[:-1]) if len(key) > 1 else None
            with self.gate():
                return self.engine.extend(prefix, key[-1:]) if prefix is not None else self.engine.trace(key)

        return self.cache.get(key, compute)
