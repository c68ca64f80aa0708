"""Trace: every named activation of one forward pass, as numpy arrays (batch dropped)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from model.config import GPT2Config
from model.intervention import Intervention
from model.sampling import logit_order


def trace_bytes(config: GPT2Config, n_tokens: int) -> int:
    """The bytes of a trace of `n_tokens` tokens (float32), before it is run: per block 18 [T, C]-sized
    tensors (norms, residuals, outputs, q, k, v, heads, the MLP's 4C-wide two) and four [H, T, T] attention
    maps; the embeddings, final.ln, the logits and the lens."""
    t, c, h, v, n_layer = n_tokens, config.n_embd, config.n_head, config.vocab_size, config.n_layer
    per_block = 18 * t * c + 4 * h * t * t
    return 4 * (n_layer * per_block + 4 * t * c + v + n_layer * v)


def tokens_within(config: GPT2Config, max_bytes: int) -> int:
    """The most tokens whose trace takes at most `max_bytes`."""
    lo, hi = 0, config.n_positions
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if trace_bytes(config, mid) <= max_bytes else (lo, mid - 1)
    return lo


@dataclass(frozen=True)
class LensRow:
    """The logit lens after one block: the top next-token guesses at the last position."""

    block: int  # counted from 0
    ids: list[int]
    probs: list[float]


class LazyTensors(Mapping[str, np.ndarray]):
    """Named tensors, some of them joined only when first read.

    An appended trace shares its prefix's tensors; joining them all up front would copy every
    activation of the prefix, while a page reads only a few of them.
    """

    def __init__(
        self, ready: dict[str, np.ndarray], pending: dict[str, tuple[Callable[[], np.ndarray], int]]
    ):
        self._ready = ready
        self._pending = pending
        self._names = [*ready, *pending]
        self._lock = threading.Lock()
        self.nbytes = sum(a.nbytes for a in ready.values()) + sum(n for _, n in pending.values())

    def __getitem__(self, name: str) -> np.ndarray:
        if (array := self._ready.get(name)) is not None:
            return array
        with self._lock:
            if (array := self._ready.get(name)) is None:
                make, _ = self._pending[name]  # KeyError for an unknown name, as a dict would
                array = self._ready[name] = make()
                del self._pending[name]  # drops the reference to the prefix's piece
            return array

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


T = TypeVar("T")


class Memo:
    """Results worked out from one trace once, kept with it: a cached trace serves many requests.

    At most `entries` results, the least recently used dropped first, and every kept byte counted
    (`nbytes`, by the `size` each caller gives): the trace cache weighs a trace with its memo, and
    `on_change(delta)` tells it when the memo grows or shrinks after the trace was stored."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.on_change: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: Hashable, build: Callable[[], T], size: Callable[[T], int]) -> T:
        """The kept result for `key`, or `build()`'s, kept at the weight `size(result)`."""
        with self._lock:
            if (found := self._items.get(key)) is not None:
                self._items.move_to_end(key)
                return found[0]  # type: ignore[return-value]
        value = build()  # outside the lock: two requests may build the same thing; the first one is kept
        weight = size(value)
        with self._lock:
            if (found := self._items.get(key)) is not None:
                return found[0]  # type: ignore[return-value]
            self._items[key] = (value, weight)
            delta = weight
            while len(self._items) > self.entries:
                delta -= self._items.popitem(last=False)[1][1]  # the least recently used
            self.nbytes += delta
            on_change = self.on_change
        if on_change is not None and delta:
            on_change(delta)
        return value


@dataclass(frozen=True)
class Trace:
    """What GPT-2 computed for `ids`. Tensor names follow docs/architecture.md's tensor table (e.g.
    `block3.attn.probs`)."""

    ids: tuple[int, ...]
    config: GPT2Config
    tensors: Mapping[str, np.ndarray] = field(repr=False)
    intervention: Intervention | None = None  # what was done to the model for this run, if anything
    # what the model works out from the tensors once (the likeliest tokens, the lens): small, counted
    derived: Memo = field(default_factory=lambda: Memo(entries=16), repr=False, compare=False)
    # what the views work out once (app/views/memo.py): pictures of this text, counted, at most 64
    views: Memo = field(default_factory=lambda: Memo(entries=64), repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.tensors[name]

    def __contains__(self, name: object) -> bool:
        return name in self.tensors

    @property
    def names(self) -> list[str]:
        return list(self.tensors)

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """The tensors' bytes."""
        if isinstance(self.tensors, LazyTensors):
            return self.tensors.nbytes
        return sum(a.nbytes for a in self.tensors.values())

    @property
    def held_bytes(self) -> int:
        """The tensors' bytes and everything worked out from them and kept with the trace."""
        return self.nbytes + self.derived.nbytes + self.views.nbytes

    @property
    def logits(self) -> np.ndarray:
        """Next-token scores at the last position, [V]."""
        return self.tensors["logits"][-1]

    def ln_input(self, name: str) -> np.ndarray:
        """The residual stream a LayerNorm reads: `block{i}.ln1`, `block{i}.ln2` or `final.ln` -> [T, C]."""
        if name == "final.ln":
            return self.tensors[f"block{self.config.n_layer - 1}.resid.out"]
        block, which = name.split(".")
        i = int(block.removeprefix("block"))
        if which == "ln2":
            return self.tensors[f"{block}.resid.mid"]
        return self.tensors["embed.sum"] if i == 0 else self.tensors[f"block{i - 1}.resid.out"]

    def ln_stats(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per token of what the LayerNorm `name` normalises: ([T], [T])."""
        x = self.ln_input(name).astype(np.float64)
        return x.mean(axis=-1), x.std(axis=-1)

    def logit_order(self) -> np.ndarray:
        """Every next-token id ranked, the same at any temperature (cached; see model/sampling.py)."""
        return self.derived.get("logit_order", lambda: logit_order(self.logits), lambda a: a.nbytes)

    def lens(self, k: int = 5) -> list[LensRow]:
        """Top-k next tokens if the model stopped after each block (ln_f and the tied head applied early)."""
        return self.derived.get(("lens", k), lambda: self._lens(k), lambda rows: 200 + 100 * k * len(rows))

    def _lens(self, k: int) -> list[LensRow]:
        z = self.tensors["lens.logits"]  # [L, V]
        vocab = z.shape[1]
        k = min(k, vocab)
        if k == 1:  # the page's lens: one pass per row
            top = z.argmax(axis=1)[:, None]
        else:
            top = np.argpartition(z, vocab - k, axis=1)[:, vocab - k :]  # the k largest scores, in no order
            top = np.take_along_axis(
                top, np.argsort(-np.take_along_axis(z, top, 1), axis=1, kind="stable"), 1
            )
        # softmax of each row, only where it is read: exp(z - max) / sum(exp(z - max)), summed in float64
        m = z.max(axis=1, keepdims=True)
        shifted = np.subtract(z, m)  # one array, exponentiated in place
        total = np.exp(shifted, out=shifted).sum(axis=1, dtype=np.float64)
        probs = np.exp(np.take_along_axis(z, top, 1).astype(np.float64) - m) / total[:, None]
        rows = [
            LensRow(block=i, ids=[int(t) for t in top[i]], probs=[float(p) for p in probs[i]])
            for i in range(z.shape[0])
        ]
        return rows
