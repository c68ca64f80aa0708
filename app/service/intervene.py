"""Interventions, request side (issue 17): the state's heads switched off as the model's `Intervention`, and
the two sweeps (which heads matter here; the patching grid), bounded and kept.

A sweep is many model runs (GPT-2 small: 144 for its heads, 13 per position for a patching grid). So:
- only for texts of at most `sweep_tokens` tokens (settings), and the sweep's size follows from that;
- each sweep is computed once per text (or pair) and kept (a BytesCache: single flight, bounded by bytes);
- at most `sweep_concurrency` sweeps are computed at once, and a page waits at most `sweep_wait` seconds for
  a turn: past that it is drawn without the sweep and says so (the answer is then not kept by any cache);
- each of a sweep's graph runs waits behind every page's run (model/gpt2.py's Gate, `background`), so a
  sweep slows pages by at most one packed run at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from app.i18n import N_, _
from app.limits import Busy
from app.settings import Settings
from app.state import State
from model import GPT2, HeadSweep, Intervention, Patch, PatchSweep, Trace
from model.cache import BytesCache

if TYPE_CHECKING:
    from app.service.run import Run

T = TypeVar("T")

WORDING = {
    "long": (
        N_(
            "The text is {n} tokens long; this server sweeps texts of at most {limit} tokens (each sweep is "
            "{runs} runs of the model). Shorten it to see this table."
        ),
        "text is {n} tokens; sweeps take texts of at most {limit} tokens",
    ),
    "busy": (
        N_("The server is busy with other sweeps; the table is left out. Reload the page in a moment."),
        "the server is busy with other sweeps; try again in a moment",
    ),
}


class SweepRefused(Exception):
    """A sweep that is not computed: the text is too long for one, or the server is busy."""

    def __init__(self, kind: str, n: int = 0, limit: int = 0, runs: int = 0) -> None:
        super().__init__(kind)
        self.kind = kind
        self.values = {"n": n, "limit": limit, "runs": runs}

    def reader(self) -> str:
        return _(WORDING[self.kind][0]).format(**self.values)

    def english(self) -> str:
        return WORDING[self.kind][1].format(**self.values)


def _weight(sweep: Any) -> int:
    array = sweep.change if isinstance(sweep, HeadSweep) else sweep.probs
    return int(array.nbytes) + 300


class Sweeps:
    """Finished sweeps by text (single flight), and the turns to compute new ones."""

    def __init__(self, settings: Settings) -> None:
        self.max_tokens = settings.sweep_tokens
        self.wait = settings.sweep_wait
        self.cache: BytesCache[Any] = BytesCache(max(settings.sweep_cache_mb * 2**20, 1), size=_weight)
        self._turns = threading.BoundedSemaphore(settings.sweep_concurrency)
        self.computed = 0
        self.refused = 0

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The sweep kept for `key`, or `compute()`'s in a turn; SweepRefused("busy") when no turn comes in
        time or the model's run queue refuses one of its runs."""

        def in_turn() -> T:
            if not self._turns.acquire(timeout=self.wait):
                self.refused += 1
                raise SweepRefused("busy")
            try:
                made = compute()
            except Busy as err:
                self.refused += 1
                raise SweepRefused("busy") from err
            finally:
                self._turns.release()
            self.computed += 1
            return made

        value: T = self.cache.get(key, in_turn)
        return value

    def check(self, n_tokens: int, runs: int) -> None:
        """SweepRefused("long") for a text past `sweep_tokens`."""
        if n_tokens > self.max_tokens:
            raise SweepRefused("long", n=n_tokens, limit=self.max_tokens, runs=runs)


def ablated(state: State) -> frozenset[tuple[int, int]]:
    """The heads the state switches off, (block, head) counted from 0 as the model counts them."""
    return frozenset((block - 1, head - 1) for block, head in state.ablate)


def intervention_of(state: State) -> Intervention | None:
    """The model's intervention for the explainer page: the heads switched off, or None."""
    return Intervention(ablate=ablated(state)) if state.ablate else None


def heads_matter(gpt2: GPT2, sweeps: Sweeps, ids: list[int]) -> HeadSweep:
    """Which heads matter for this text: every head switched off alone (the model's `head_sweep`), kept."""
    cfg = gpt2.config
    sweeps.check(len(ids), cfg.n_layer * cfg.n_head)
    key = ("heads", gpt2.name, tuple(ids))
    sweep: HeadSweep = sweeps.get(key, lambda: gpt2.head_sweep(ids))
    return sweep


def add_sweep(gpt2: GPT2, sweeps: Sweeps, r: Run, view: str) -> None:
    """For the heads panel (`view` "heads"): put the sweep of the run's text in `r`, or why there is none."""
    if view != "heads" or r.trace is None:
        return
    try:
        r.sweep = heads_matter(gpt2, sweeps, list(r.trace.ids))
    except SweepRefused as err:
        r.sweep_problem = err.reader()
        r.sweep_busy = err.kind == "busy"


def site_tensor(site: int) -> str:
    """The residual stream's tensor at a patch site: 0 is `embed.sum`, s >= 1 is `block{s-1}.resid.out`."""
    return "embed.sum" if site == 0 else f"block{site - 1}.resid.out"


def patched(source: Trace, site: int, position: int, ablate: frozenset[tuple[int, int]]) -> Intervention:
    """The intervention copying `source`'s residual at (site, position from 0) into another run."""
    return Intervention(ablate=ablate, patch=(Patch.from_trace(source, site_tensor(site), position),))


def patch_grid(
    gpt2: GPT2, sweeps: Sweeps, ids: list[int], source: Trace, token: int, ablate: frozenset[tuple[int, int]]
) -> PatchSweep:
    """The patching grid of a pair: `source`'s residual at every site and shared position copied into the
    run of `ids`, the probability of `token` each time (the model's `patch_sweep`), kept."""
    positions = min(len(ids), source.n_tokens)
    sweeps.check(max(len(ids), source.n_tokens), (gpt2.config.n_layer + 1) * positions)
    key = ("patch", gpt2.name, tuple(ids), source.ids, token, ablate)
    sweep: PatchSweep = sweeps.get(key, lambda: gpt2.patch_sweep(ids, source, token, ablate=ablate))
    return sweep
