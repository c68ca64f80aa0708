"""Turn next-token scores into a choice: temperature, top-k, top-p, then a seeded draw (pure numpy).

Every step reads the tokens in one order, the ranking: the highest score (logit) first, and equal scores by
lower id. Dividing by a positive temperature and the softmax keep that order, so it is the order of the
probabilities at every temperature, found once per text (`ranking`).
- top-k keeps the first k of the ranking: exactly k tokens, a tie at the cut going to the lower ids, so
  top-k 1 keeps greedy's token;
- top-p keeps the shortest start of the ranking whose probability reaches p (top-p 1 keeps every token);
- the draw lays the kept tokens' probabilities end to end in ranking order and takes the token under the
  point u·(their total), with u in [0, 1) from the seed.
So a filter that keeps every token draws exactly what no filter draws, and any filter can only move the draw
up the ranking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

BLOCK = 256  # the draw walks the ranked probabilities by blocks of this many


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
    token: int  # the sampled id (the first of the ranking when greedy)
    greedy: bool
    order: np.ndarray = field(repr=False)  # every id, ranked (`ranking`) [V]
    filtered: np.ndarray | None = field(default=None, repr=False)  # the kept ids, ranked; None: every id

    @property
    def kept_count(self) -> int:
        """How many ids top-k / top-p keep (the whole vocabulary when they cut nothing)."""
        return self.probs.size if self.filtered is None else self.filtered.size

    def kept_top(self, n: int) -> np.ndarray:
        """The first n kept ids of the ranking."""
        return self.filtered[:n] if self.filtered is not None else self.top(n)

    @cached_property
    def kept(self) -> np.ndarray:
        """Every kept id, ranked."""
        return self.kept_top(self.kept_count)

    def top(self, n: int) -> np.ndarray:
        """The first n ids of the ranking, before filtering."""
        return self.order[:n]

    def rank(self, token: int) -> int:
        """Where `token` stands in the ranking, counted from 1."""
        return int(np.flatnonzero(self.order == token)[0]) + 1


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax in float64."""
    e = np.asarray(z, dtype=np.float64) - np.max(z)  # a new array, then worked on in place
    np.exp(e, out=e)
    e /= e.sum()
    return e


def ranking(logits: np.ndarray) -> np.ndarray:
    """Every id, highest score first, equal scores by lower id: [V] -> [V].

    float32 scores (the model's) take one sort of 64-bit keys: the score's bits turned into an unsigned
    integer that sorts highest score first, then the id. Other dtypes take a stable sort."""
    x = np.asarray(logits).reshape(-1)
    if x.dtype != np.float32:
        return np.argsort(-x, kind="stable")  # stable: equal scores keep id order (-0.0 equals 0.0)
    bits = (x + np.float32(0)).view(np.uint32)  # + 0 turns -0.0 into 0.0, so equal scores tie
    up = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))  # floats -> uints in the same order
    keys = (~up).astype(np.uint64) << np.uint64(32) | np.arange(x.size, dtype=np.uint64)  # [V]
    return (np.sort(keys) & np.uint64(0xFFFFFFFF)).astype(np.intp)


def logit_order(logits: np.ndarray) -> np.ndarray:
    """The ranking of a text's next-token scores, the same at every temperature: found once per text."""
    return ranking(logits)


def _nucleus(p: np.ndarray, order: np.ndarray, top_p: float) -> np.ndarray:
    """The shortest start of the ranking whose total probability is at least top_p."""
    for n in (BLOCK, 4096, p.size):  # usually a few hundred ids hold the mass: sum no more than needed
        ids = order[:n]
        cum = np.cumsum(p[ids])
        if cum[-1] >= top_p or n >= p.size:
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


def sample(
    logits: np.ndarray,
    temperature: float = DEFAULT_TEMPERATURE,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    greedy: bool = False,
    order: np.ndarray | None = None,
) -> Sampling:
    """Scale by temperature, keep the top-k and then the top-p nucleus, renormalise, draw with `seed`.

    Top-k keeps exactly k ids, the first k of the ranking (equal scores: lower id first); top-p 1 keeps all.
    `order` is optional: `logit_order(logits)`, found once per text, saves a sort per call."""
    logits = np.asarray(logits).reshape(-1)
    check_controls(temperature, top_k, top_p, logits.size)
    order = ranking(logits) if order is None else order
    assert order.size == logits.size, "order: the whole ranking, as logit_order gives it"
    scaled = logits.astype(np.float64) / temperature
    probs_all = softmax(scaled)
    n = logits.size if top_k is None else top_k  # how many of the ranking are kept
    if top_p is not None and top_p < 1:
        if n == logits.size:
            n = _nucleus(probs_all, order, top_p).size
        else:  # nucleus of the top-k set, renormalised
            cum = np.cumsum(probs_all[order[:n]] / probs_all[order[:n]].sum())
            n = min(int(np.searchsorted(cum, top_p - 1e-12) + 1), n)
    u = np.random.default_rng(seed).random()
    token = int(order[0]) if greedy else _draw(probs_all, order[:n], u)
    if n == logits.size:  # nothing cut (also when a filter keeps every token)
        probs, kept_mass, kept = probs_all, 1.0, None
    else:
        kept = order[:n]
        probs = np.zeros_like(probs_all)
        kept_mass = float(probs_all[kept].sum())
        probs[kept] = probs_all[kept] / kept_mass
    return Sampling(
        temperature, top_k, top_p, scaled, probs_all, probs, kept_mass, token, greedy, order, kept
    )


def _draw(p: np.ndarray, ranked: np.ndarray, u: float) -> int:
    """The id under the point u·(total probability of `ranked`) when their probabilities are laid end to
    end in ranking order.

    The running total is found block by block: the first block alone (it usually holds the point), else the
    sums of all blocks of BLOCK ids, then the running total within the one block holding the point. So a
    draw never runs through the whole vocabulary one id at a time."""
    if ranked.size < p.size:
        cum = np.cumsum(np.take(p, ranked, mode="clip"))  # [n]
        return int(ranked[_invert(cum, u * cum[-1])])
    point = u * p.sum()  # every id kept: the total without gathering them
    first = np.cumsum(p[ranked[:BLOCK]])  # [BLOCK]
    if point < first[-1] or ranked.size <= BLOCK:
        return int(ranked[_invert(first, point)])
    rest = ranked[BLOCK:]
    ranked_p = np.take(p, rest, mode="clip")  # [V - BLOCK] ("clip": the ids are valid, skip the checks)
    sums = np.add.reduceat(ranked_p, np.arange(0, rest.size, BLOCK))  # [blocks] in ranking order
    running = first[-1] + np.cumsum(sums)
    b = _invert(running, point)
    inner = np.cumsum(ranked_p[b * BLOCK : (b + 1) * BLOCK])  # [BLOCK]
    return int(rest[b * BLOCK + _invert(inner, point - (running[b - 1] if b else first[-1]))])


def _invert(cum: np.ndarray, point: float) -> int:
    """Where `point` falls on a running total: the first i with cum[i] > point (past the end, by rounding:
    the last i that adds to the total)."""
    i = int(np.searchsorted(cum, point, side="right"))
    return i if i < cum.size else int(np.searchsorted(cum, cum[-1]))
