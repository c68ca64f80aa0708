"""What checking a cached graph at every start costs, next to what a start costs anyway (one run).

A start that finds its graph cached: hash the weights file for the cache key (file-backed models only), check
the graph's files against their manifest (size and SHA-256 of model.onnx and weights.bin), open the
onnxruntime session, run the startup check trace. Prints each step's best time and the check's share of the
start, then the first build, for GPT-2 small's shapes (random-gpt2) in a fresh cache directory.

    python bench/graph_cache.py [--model random-gpt2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from model.gpt2 import GPT2
from model.graphcache import WEIGHTS_FILE, check_graph
from model.sources import load_model
from model.weights import file_fingerprint, save_safetensors


def best_s(work: Callable[[], object], repeat: int) -> float:
    """The fastest of `repeat` timings: the others were slowed by whatever else shares the cores."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="random-gpt2")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        loaded = load_model(args.model)
        start = time.perf_counter()
        gpt2 = GPT2(loaded, threads=1, cache_bytes=0, cache_dir=cache)
        build = time.perf_counter() - start
        directory = gpt2.engine.graph_file.parent
        size_mb = (directory / WEIGHTS_FILE).stat().st_size / 1e6
        weights_file = cache / "model.safetensors"  # as a hub model or a --model directory would have it
        save_safetensors(load_model(args.model).weights, weights_file)

        def key() -> str:
            return file_fingerprint(weights_file, loaded.config)

        def check() -> None:
            assert check_graph(directory) is None

        def open_session() -> None:
            gpt2.engine._open(gpt2.engine.graph_file)

        steps = {
            "hash the weights file (the cache key)": best_s(key, args.repeat),
            "check the graph against its manifest": best_s(check, args.repeat),
            "open the onnxruntime session": best_s(open_session, args.repeat),
            "the startup check trace": best_s(gpt2.self_check, args.repeat),
        }
    total = sum(steps.values())
    print(f"{args.model}: weights.bin {size_mb:.0f} MB; first build (graph, manifest, session) {build:.2f} s")
    for name, seconds in steps.items():
        print(f"  {name:<40} {seconds:6.2f} s  {seconds / total:5.0%} of a start")
    check_share = steps["check the graph against its manifest"] / total
    print(f"a start that finds its graph: {total:.2f} s, of which the manifest check is {check_share:.2f}")


if __name__ == "__main__":
    main()
