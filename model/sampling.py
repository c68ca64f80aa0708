"""Turn next-token scores into a choice: temperature, top-k, top-p, then a seeded draw (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """Every step from logits to the chosen token, over the full vocabulary [V]."""

    temperature: float
    top_k: int | None
    top_p: float | None
    scaled: np.ndarray  # logits / temperature, float64 [V]
    probs_all: np.ndarray  # softmax(scaled) before any filter [V]
    probs: np.ndarray  # renormalised over the kept set, zero elsewhere [V]
    kept_mass: float  # how much of probs_all the kept set holds
    token: int  # the sampled id (the most likely one when greedy)
    greedy: bool
    filtered: np.ndarray | None = field(default=None, repr=False)  # kept ids, most likely first; None: all
    order: np.ndarray | None = field(default=None, repr=False)  # logit_order(logits), when known

    @property
    def kept_count(self) -> int:
        """How many ids top-k / top-p keep (the whole vocabulary when neither is set)."""
        return self.probs.size if self.filtered is None else self.filtered.size

    def kept_top(self, n: int) -> np.ndarray:
        """The n most likely kept ids, most likely first, without sorting the whole vocabulary."""
        if self.filtered is not None:
            return self.filtered[:n]
        return self.top(n)

    @cached_property
    def kept(self) -> np.ndarray:
        """Every kept id, most likely first (sorts the vocabulary when nothing was filtered)."""
        return self.kept_top(self.kept_count)

    def top(self, n: int) -> np.ndarray:
        """The n most likely ids before filtering, most likely first."""
        return _likeliest(self.probs_all, n, self.order)


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    e = np.asarray(z, dtype=np.float64) - np.max(z)  # a new array, then worked on in place
    np.exp(e, out=e)
    e /= e.sum()
    return e


def _top_ids(p: np.ndarray, n: int) -> np.ndarray:
    """Ids of the n largest entries, largest first (ties broken by lower id)."""
    n = min(n, p.size)
    part = np.argpartition(p, p.size - n)[p.size - n :] if n < p.size else np.arange(p.size)
    return part[np.lexsort((part, -p[part]))]


def _likeliest(p: np.ndarray, n: int, order: np.ndarray | None) -> np.ndarray:
    """`_top_ids(p, n)`, read off `order` (the logits' order, the same as p's) when it is long enough."""
    return order[:n] if order is not None and n <= order.size else _top_ids(p, n)


def logit_order(logits: np.ndarray, n: int = 256) -> np.ndarray:
    """The n highest-scoring ids, highest first: the order of the probabilities at every temperature (dividing
    by a positive temperature and the softmax keep the order), so it can be found once per text."""
    return _top_ids(np.asarray(logits).reshape(-1), n)


def _nucleus(p: np.ndarray, top_p: float, order: np.ndarray | None = None) -> np.ndarray:
    """The smallest set of ids, most likely first, whose total probability is at least top_p."""
    for n in (256, 4096, p.size):  # usually a few hundred ids hold the mass: avoid sorting all V
        ids = _likeliest(p, n, order)
        cum = np.cumsum(p[ids])
        if cum[-1] >= top_p or n == p.size:
            count = int(np.searchsorted(cum, top_p - 1e-12) + 1)  # first prefix whose mass reaches top_p
            return ids[: min(count, ids.size)]
    raise AssertionError("unreachable")


# One default everywhere (the page's slider, the API, the CLI): 1, the model's own probabilities, so the
# same text shows the same numbers wherever it is read.
DEFAULT_TEMPERATURE = 1.0


def check_controls(temperature: float, top_k: int | None, top_p: float | None, vocab: int) -> None:
    """Raise ValueError with a sentence a user can act on."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError("temperature must be a number above 0")
    if top_k is not None and not 1 <= top_k <= vocab:
        raise ValueError(f"top-k must be between 1 and {vocab}")
    if top_p is not None and not (np.isfinite(top_p) and 0 < top_p <= 1):
        raise ValueError("top-p must be above 0 and at most 1")


def sample(logits: np.ndarray, temperature: float = DEFAULT_TEMPERATURE, top_k: int | None = None,
           top_p: float | None = None, seed: int = 0, greedy: bool = False,
           order: np.ndarray | None = None) -> Sampling:  # fmt: skip
    """Scale by temperature, keep the top-k and then the top-p nucleus, renormalise, draw with `seed`.

    `order` is optional: `logit_order(logits)`, computed once per text, saves a partial sort per call."""
    logits = np.asarray(logits).reshape(-1)
    check_controls(temperature, top_k, top_p, logits.size)
    scaled = logits.astype(np.float64) / temperature
    probs_all = softmax(scaled)
    kept = _likeliest(probs_all, top_k, order) if top_k is not None else None
    if top_p is not None:
        if kept is None:
            kept = _nucleus(probs_all, top_p, order)
        else:  # nucleus of the top-k set, renormalised
            sub = probs_all[kept] / probs_all[kept].sum()
            cum = np.cumsum(sub)
            kept = kept[: int(np.searchsorted(cum, top_p - 1e-12) + 1)]
    if kept is None:  # no filter: keep everything, and never sort the vocabulary
        probs, kept_mass = probs_all, 1.0
        token = int(np.argmax(probs_all)) if greedy else _draw(None, probs_all, seed)
    else:
        probs = np.zeros_like(probs_all)
        kept_mass = float(probs_all[kept].sum())
        probs[kept] = probs_all[kept] / kept_mass
        token = int(kept[0]) if greedy else _draw(kept, probs[kept], seed)
    return Sampling(
        temperature, top_k, top_p, scaled, probs_all, probs, kept_mass, token, greedy, kept, order
    )


def _draw(ids: np.ndarray | None, p: np.ndarray, seed: int) -> int:
    """One id drawn with probabilities p by inverting their running total with a seeded uniform number
    (`ids` None: the ids are the positions in p).

    The running total is found block by block (the sums of blocks of 256, then within one block), which is
    the same inversion without a sequential pass over the whole vocabulary."""
    u = np.random.default_rng(seed).random()
    outer = np.cumsum(np.add.reduceat(p, np.arange(0, p.size, BLOCK)))
    target = u * outer[-1]
    b = min(int(np.searchsorted(outer, target, side="right")), outer.size - 1)
    inner = np.cumsum(p[b * BLOCK : (b + 1) * BLOCK])
    k = min(int(np.searchsorted(inner, target - (outer[b - 1] if b else 0.0), side="right")), inner.size - 1)
    i = b * BLOCK + k
    return i if ids is None else int(ids[i])


BLOCK = 256
