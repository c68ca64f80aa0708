"""The one object the web app and the CLI talk to: tokenizer, engine and trace cache of one model."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from model.cache import TraceCache
from model.intervention import Intervention, Patch
from model.mapped import MappedWeights, mapped_weights
from model.runtime import Engine
from model.sources import LoadedModel
from model.tokenizer import Token
from model.trace import Trace

MAX_PACK = 8  # texts in one model run at most
# ... and at most this many attention cells (new tokens x all keys): the run's attention tensors grow with it
MAX_PACK_CELLS = 16_384
CHECK_TEXT = "Hello, world"  # the startup check's trace


class Gate(Protocol):
    """Where every model run (not a cache hit) waits for its turn. `slot(done)` holds a turn for the body of
    a `with` and gives True; it may stop waiting once `done()` says another run did the work, and then gives
    False. A `background` run (one of a sweep's many) lets every other run waiting go first. A server
    implements it with a bounded queue (app/limits.py's RunQueue)."""

    def slot(
        self, done: Callable[[], bool] | None = None, *, background: bool = False
    ) -> AbstractContextManager[bool]: ...


class NoGate:
    """The gate of a GPT2 outside a server: every run goes at once."""

    @contextmanager
    def slot(self, done: Callable[[], bool] | None = None, *, background: bool = False) -> Iterator[bool]:
        yield True


class _Job:
    """A text waiting for a model run: its traced prefix (or None), new ids and intervention, and the trace
    to come. Texts with different interventions share runs: each token's row has its own."""

    def __init__(self, prefix: Trace | None, new: tuple[int, ...], intervention: Intervention | None = None):
        self.prefix = prefix
        self.new = new
        self.intervention = intervention
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

    @property
    def weights_on_disk(self) -> MappedWeights:
        """The weights as the graph on disk holds them, read a slice at a time (model/mapped.py)."""
        return mapped_weights(self.engine.graph_file, self.config)

    def self_check(self) -> None:
        """One short trace outside the cache, whose logits the engine checks (NaN: the graph is built again
        once, then BrokenModel): run at startup, so a server never says it is ready with corrupt numbers."""
        self.engine.trace(self.tokenizer.encode(CHECK_TEXT))

    def tokenize(self, text: str) -> list[Token]:
        """Text -> tokens (id, text, display label)."""
        return self.tokenizer.tokens(self.tokenizer.encode(text))

    def trace(self, ids: Sequence[int], intervention: Intervention | None = None) -> Trace:
        """The trace of `ids`, from the cache when possible; extends a cached prefix when one exists.

        With an intervention (model/intervention.py), e.g. `Intervention(ablate=frozenset({(3, 5)}))`, the
        trace is its own cache entry; an empty intervention is no intervention."""
        key = tuple(int(i) for i in ids)
        if intervention:
            intervention.check(self.config, len(key))  # a bad intervention fails alone, before any run
        else:
            intervention = None

        def compute() -> Trace:
            # "Generate" appends one token: reuse the prefix's keys and values instead of starting over, if
            # it was traced under the same intervention (so that patches none of the new token's vectors)
            prefix = self.cache.peek(_key(key[:-1], intervention)) if len(key) > 1 else None
            return self._run(_Job(prefix, key[-1:] if prefix is not None else key, intervention))

        return self.cache.get(_key(key, intervention), compute)

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
            traces = self.engine.run_many([(j.prefix, j.new) for j in batch], [j.intervention for j in batch])
        except BaseException as err:
            for j in batch:
                j.future.set_exception(err)
            raise
        with self._lock:
            self.runs += 1
            self.texts += len(batch)
        for j, trace in zip(batch, traces, strict=True):
            j.future.set_result(trace)

    def head_sweep(self, ids: Sequence[int], *, per_run: int | None = None) -> HeadSweep:
        """Which heads matter here: for each head alone switched off, the change in the probability of the
        clean run's top next token (temperature 1, no filter). L·H runs of the text (144 for GPT-2 small),
        packed `per_run` to a graph run (by default as many as MAX_PACK and MAX_PACK_CELLS allow), each
        through the gate like any other model run, but behind every other run waiting (`background`).

        Its runs fetch only next-token scores, so they are kept apart from the texts waiting in `_run` (which
        need every tensor): packed with those, they would make the whole run fetch and split everything."""
        key = tuple(int(i) for i in ids)
        c = self.config
        clean = self.trace(key)
        top = int(clean.logit_order()[0])
        before = float(_prob(clean.logits[None, :], top)[0])
        heads = [(b, h) for b in range(c.n_layer) for h in range(c.n_head)]
        alone = [Intervention(ablate=frozenset({head})) for head in heads]  # one head off in each
        after, runs = self._sweep(key, alone, top, per_run)
        change = (after - before).reshape(c.n_layer, c.n_head)
        return HeadSweep(token=top, prob=before, change=change, runs=runs)

    def patch_sweep(
        self,
        ids: Sequence[int],
        source: Trace,
        token: int,
        *,
        per_run: int | None = None,
        ablate: frozenset[tuple[int, int]] = frozenset(),
    ) -> PatchSweep:
        """Activation patching at every site: for each residual stream site s (0: `embed.sum`, entering block
        0; s >= 1: `block{s-1}.resid.out`) and each position p that both texts have (counted from the start,
        so the vector keeps its position embedding), the probability of next token `token` when the run of
        `ids` gets `source`'s vector there, with the heads `ablate` switched off (as they should be in the
        source's run). (L+1)·min(T, T_source) runs, packed and in the background as `head_sweep`'s."""
        key = tuple(int(i) for i in ids)
        c = self.config
        positions = min(len(key), source.n_tokens)
        tensors = ["embed.sum", *(f"block{b}.resid.out" for b in range(c.n_layer))]
        patches = [
            Intervention(ablate=ablate, patch=(Patch.from_trace(source, tensor, p),))
            for tensor in tensors
            for p in range(positions)
        ]
        probs, runs = self._sweep(key, patches, token, per_run)
        return PatchSweep(token=token, probs=probs.reshape(c.n_layer + 1, positions), runs=runs)

    def _sweep(
        self, key: tuple[int, ...], interventions: list[Intervention], token: int, per_run: int | None
    ) -> tuple[np.ndarray, int]:
        """softmax(logits)[token] of the text `key` under each intervention, from packed graph runs that fetch
        only the next-token scores, each waiting behind the other runs (`background`); and the runs taken."""
        most = max(1, min(MAX_PACK, math.isqrt(MAX_PACK_CELLS) // len(key)))  # (k·T)² cells for k texts
        per_run = most if per_run is None else max(1, min(per_run, most))
        probs = np.empty(len(interventions))
        runs = 0
        for start in range(0, len(interventions), per_run):
            chunk = interventions[start : start + per_run]
            with self.gate.slot(lambda: False, background=True):
                logits = self.engine.next_token_logits([(None, key)] * len(chunk), chunk)  # [k, V]
            probs[start : start + len(chunk)] = _prob(logits, token)
            runs += 1
            with self._lock:
                self.runs += 1
                self.texts += len(chunk)
        return probs, runs


@dataclass(frozen=True)
class HeadSweep:
    """The change in the top next token's probability when each head alone is switched off."""

    token: int  # the clean run's top next token
    prob: float  # its probability in the clean run
    change: np.ndarray  # [L, H]: its probability with that head switched off, minus `prob`
    runs: int  # graph runs the sweep took


@dataclass(frozen=True)
class PatchSweep:
    """The probability of one next token with one residual vector patched in, at every site and position."""

    token: int
    probs: np.ndarray  # [L+1, P]: site s (0: embed.sum, s: block{s-1}.resid.out) and position p, from 0
    runs: int  # graph runs the sweep took


def _key(ids: tuple[int, ...], intervention: Intervention | None) -> Hashable:
    """A trace's cache key: its ids, with the intervention when there is one."""
    return ids if intervention is None else (ids, intervention)


def _prob(logits: np.ndarray, token: int) -> np.ndarray:
    """softmax(logits)[:, token] in float64, for each row of [R, V]."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    return np.exp(z[:, token]) / np.exp(z).sum(axis=1)  # type: ignore[no-any-return]
