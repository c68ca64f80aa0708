"""The time of one sampling (temperature, top-k, top-p, the seeded draw): model/sampling.py, whose draw walks
the ranking (every id, found once per text), against the previous version, whose draw walked the vocabulary
in id order when nothing was cut and which knew only the top 256 ids of a text (kept below as `old_sample`
and `old_order`, the baseline), measured in the same run.

Next-token scores of two kinds: the trained demo model's (peaked, like GPT-2's) and GPT-2-small-shaped random
weights' (flatter: at temperature 1.5 and up most draws land past the first block of 256 ids). Each setting
samples with the text's order, found once, as the page does, over many seeds. Prints microseconds per call
and new / old; then the once-per-text cost of the order, old and new.

    python bench/sampling.py [--repeat 7] [--calls 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from model.config import GPT2Config
from model.runtime import Engine
from model.sampling import Sampling, check_controls, logit_order, sample, softmax
from model.sources import load_model, synthetic_model

TEXT_IDS = [6601, 32704, 795, 30132, 2985, 284]  # "Data visualization empowers users to"
SETTINGS: list[dict[str, Any]] = [
    {"temperature": 0.8},
    {"temperature": 1.5},
    {"temperature": 5.0},
    {"temperature": 0.8, "top_k": 40},
    {"temperature": 0.8, "top_p": 0.9},
]


# -- the baseline: model/sampling.py's sample before the draw walked the ranking ----------------------------
def _old_top_ids(p: np.ndarray, n: int) -> np.ndarray:
    n = min(n, p.size)
    part = np.argpartition(p, p.size - n)[p.size - n :] if n < p.size else np.arange(p.size)
    return part[np.lexsort((part, -p[part]))]


def old_order(logits: np.ndarray) -> np.ndarray:
    return _old_top_ids(np.asarray(logits).reshape(-1), 256)


def _old_likeliest(p: np.ndarray, n: int, order: np.ndarray | None) -> np.ndarray:
    return order[:n] if order is not None and n <= order.size else _old_top_ids(p, n)


def _old_nucleus(p: np.ndarray, top_p: float, order: np.ndarray | None) -> np.ndarray:
    for n in (256, 4096, p.size):
        ids = _old_likeliest(p, n, order)
        cum = np.cumsum(p[ids])
        if cum[-1] >= top_p or n == p.size:
            return ids[: min(int(np.searchsorted(cum, top_p - 1e-12) + 1), ids.size)]
    raise AssertionError("unreachable")


def _old_draw(ids: np.ndarray | None, p: np.ndarray, seed: int) -> int:
    u = np.random.default_rng(seed).random()
    outer = np.cumsum(np.add.reduceat(p, np.arange(0, p.size, 256)))
    target = u * outer[-1]
    b = min(int(np.searchsorted(outer, target, side="right")), outer.size - 1)
    inner = np.cumsum(p[b * 256 : (b + 1) * 256])
    k = min(int(np.searchsorted(inner, target - (outer[b - 1] if b else 0.0), side="right")), inner.size - 1)
    i = b * 256 + k
    return i if ids is None else int(ids[i])


def old_sample(
    logits: np.ndarray,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    greedy: bool = False,
    order: np.ndarray | None = None,
) -> Sampling:
    logits = np.asarray(logits).reshape(-1)
    check_controls(temperature, top_k, top_p, logits.size)
    scaled = logits.astype(np.float64) / temperature
    probs_all = softmax(scaled)
    kept = _old_likeliest(probs_all, top_k, order) if top_k is not None else None
    if top_p is not None:
        if kept is None:
            kept = _old_nucleus(probs_all, top_p, order)
        else:
            sub = probs_all[kept] / probs_all[kept].sum()
            cum = np.cumsum(sub)
            kept = kept[: int(np.searchsorted(cum, top_p - 1e-12) + 1)]
    if kept is None:
        probs, kept_mass = probs_all, 1.0
        token = int(np.argmax(probs_all)) if greedy else _old_draw(None, probs_all, seed)
    else:
        probs = np.zeros_like(probs_all)
        kept_mass = float(probs_all[kept].sum())
        probs[kept] = probs_all[kept] / kept_mass
        token = int(kept[0]) if greedy else _old_draw(kept, probs[kept], seed)
    return Sampling(
        temperature, top_k, top_p, scaled, probs_all, probs, kept_mass, token, greedy, kept, order
    )


# -----------------------------------------------------------------------------------------------------------
def per_call_us(
    old: Callable[[int], object], new: Callable[[int], object], calls: int, repeat: int
) -> tuple[float, float]:
    """Mean microseconds per call of each over seeds 0..calls-1, each seed's call timed `repeat` times and
    the fastest kept (a slower one was interrupted by whatever else shares the cores). Old and new calls
    alternate, so both see the same load."""
    times = np.full((2, calls), np.inf)
    for _ in range(repeat):
        for seed in range(calls):
            for k, work in enumerate((old, new)):
                start = time.perf_counter()
                work(seed)
                times[k, seed] = min(times[k, seed], time.perf_counter() - start)
    old_us, new_us = times.mean(axis=1) * 1e6
    return float(old_us), float(new_us)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--calls", type=int, default=200)
    args = p.parse_args()

    sources = {
        "demo (trained)": load_model("demo"),
        "random-gpt2": synthetic_model("random-gpt2", GPT2Config(), seed=1),
    }
    print(f"µs per sample(): mean over {args.calls} seeds of the fastest of {args.repeat} calls each")
    print(f"{'logits':<16}{'setting':<34}{'old µs':>9}{'new µs':>9}{'new/old':>9}")
    ratios: list[float] = []
    for name, loaded in sources.items():
        logits = Engine.for_model(loaded, threads=1).trace(TEXT_IDS).logits
        for kw in SETTINGS:
            old, new = compare(logits, kw, args.calls, args.repeat)
            ratios.append(new / old)
            setting = ", ".join(f"{k}={v}" for k, v in kw.items())
            print(f"{name:<16}{setting:<34}{old:>9.0f}{new:>9.0f}{new / old:>9.2f}")
    print(f"geometric mean new/old: {float(np.exp(np.mean(np.log(ratios)))):.2f}")
    old, new = per_call_us(lambda s: old_order(logits), lambda s: logit_order(logits), 20, args.repeat)
    print(
        f"once per text, the order: old (top 256 ids) {old:.0f} µs, new (every id) {new:.0f} µs, "
        f"new/old {new / old:.2f}"
    )


def compare(logits: np.ndarray, kw: dict[str, Any], calls: int, repeat: int) -> tuple[float, float]:
    """µs per sample() with the settings `kw`, old and new, each with its own order found once."""
    old_ids, new_ids = old_order(logits), logit_order(logits)
    return per_call_us(
        lambda s: old_sample(logits, seed=s, order=old_ids, **kw),
        lambda s: sample(logits, seed=s, order=new_ids, **kw),
        calls,
        repeat,
    )


if __name__ == "__main__":
    main()
