"""Texts packed into one model run against the same texts run one by one, measured in the same process.

A short run is mostly the time to read GPT-2's weights from memory, which a packed run does once for all its
texts; the logit lens (every block's guess, a [L, V] product per text) is computation and grows with them.
Prints, per number of texts, the time of one packed run and of that many single runs, and their ratio.

    python bench/packing.py [--model random-gpt2] [--threads 1] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from model.runtime import Engine
from model.sources import load_model


def best_ms(work: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timings: the others were slowed by whatever else shares the cores."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="random-gpt2")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (the server's --threads)")
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()

    engine = Engine.for_model(load_model(args.model), threads=args.threads)
    # eight students' texts of about ten tokens, each extended by one generated token, as Generate does
    prefixes = [engine.trace([100 + 37 * k + i for i in range(10 + k % 3)]) for k in range(8)]
    engine.extend(prefixes[0], [5])  # warm up
    print(f"{args.model}, {args.threads} thread(s); best of {args.repeat}")
    print(f"{'texts':>5}{'packed ms':>12}{'one by one ms':>15}{'ratio':>8}")
    for n in (1, 2, 4, 8):
        jobs = [(prefix, [5]) for prefix in prefixes[:n]]
        packed = best_ms(lambda jobs=jobs: engine.run_many(jobs), args.repeat)
        alone = best_ms(lambda jobs=jobs: [engine.extend(prefix, ids) for prefix, ids in jobs], args.repeat)
        print(f"{n:>5}{packed:>12.1f}{alone:>15.1f}{alone / packed:>8.2f}")


if __name__ == "__main__":
    main()
