"""Turn next-token scores into a choice: temperature, top-k, top-p, then a seeded draw (pure numpy)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """Every step from logits to the chosen token, over the full vocabulary [V]."""

    temperature: float
    top_k: int | None
    top_p: float | None
    scaled: np.ndarray  # logits / temperature, float64 [V]
    probs_all: np.ndarray  # softmax(scaled) before any filter [V]
    kept: np.ndarray  # ids kept by top-k / top-p, most likely first
    probs: np.ndarray  # renormalised over the kept set, zero elsewhere [V]
    kept_mass: float  # how much of probs_all the kept set holds
    token: int  # the sampled id (the most likely one when greedy)
    greedy: bool

    def top(self, n: int) -> np.ndarray:
        """The n most likely ids before filtering, most likely first."""
        return _top_ids(self.probs_all, n)


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max())
    return e / e.sum()


def _top_ids(p: np.ndarray, n: int) -> np.ndarray:
    """Ids of the n largest entries, largest first (ties broken by lower id)."""
    n = min(n, p.size)
    part = np.argpartition(-p, n - 1)[:n] if n < p.size else np.arange(p.size)
    return part[np.lexsort((part, -p[part]))]


def _nucleus(p: np.ndarray, top_p: float) -> np.ndarray:
    """The smallest set of ids, most likely first, whose total probability is at least top_p."""
    for n in (256, 4096, p.size):  # usually a few hundred ids hold the mass: avoid sorting all V
        ids = _top_ids(p, n)
        cum = np.cumsum(p[ids])
        if cum[-1] >= top_p or n == p.size:
            count = int(np.searchsorted(cum, top_p - 1e-12) + 1)  # first prefix whose mass reaches top_p
            return ids[: min(count, ids.size)]
    raise AssertionError("unreachable")


def check_controls(temperature: float, top_k: int | None, top_p: float | None, vocab: int) -> None:
    """Raise ValueError with a sentence a user can act on."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError("temperature must be a number above 0")
    if top_k is not None and not 1 <= top_k <= vocab:
        raise ValueError(f"top-k must be between 1 and {vocab}")
    if top_p is not None and not (np.isfinite(top_p) and 0 < top_p <= 1):
        raise ValueError("top-p must be above 0 and at most 1")


def sample(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, seed: int = 0, greedy: bool = False) -> Sampling:  # fmt: skip
    """Scale by temperature, keep the top-k and then the top-p nucleus, renormalise, draw with `seed`."""
    logits = np.asarray(logits).reshape(-1)
    check_controls(temperature, top_k, top_p, logits.size)
    scaled = logits.astype(np.float64) / temperature
    probs_all = softmax(scaled)
    kept = _top_ids(probs_all, top_k) if top_k is not None else None
    if top_p is not None:
        if kept is None:
            kept = _nucleus(probs_all, top_p)
        else:  # nucleus of the top-k set, renormalised
            sub = probs_all[kept] / probs_all[kept].sum()
            cum = np.cumsum(sub)
            kept = kept[: int(np.searchsorted(cum, top_p - 1e-12) + 1)]
    if kept is None:
        kept = _top_ids(probs_all, probs_all.size)
    probs = np.zeros_like(probs_all)
    kept_mass = float(probs_all[kept].sum())
    probs[kept] = probs_all[kept] / kept_mass
    if greedy:
        token = int(kept[0])
    else:
        rng = np.random.default_rng(seed)
        token = int(kept[rng.choice(kept.size, p=probs[kept])]) if kept.size > 1 else int(kept[0])
    return Sampling(temperature, top_k, top_p, scaled, probs_all, kept, probs, kept_mass, token, greedy)
