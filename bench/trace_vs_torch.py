"""Trace time of the ONNX engine vs transformers' PyTorch GPT-2, and vs the weight-streaming floor.

GPT-2-small-shaped random weights (12 layers, 12 heads, 768 wide). The engines run interleaved in one
process with 2 threads each; every number is a median over repeats measured in this same run, so the
ratios hold on a shared, noisy machine. Last line: `ratio_vs_torch_T32=<number>`.

    python bench/trace_vs_torch.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from model.config import GPT2Config
from model.runtime import Engine
from model.sources import synthetic_model
from model.torch_gpt2 import hf_model


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    torch.set_num_threads(2)
    loaded = synthetic_model("random-gpt2", GPT2Config(), seed=1)
    with tempfile.TemporaryDirectory() as cache:
        engine = Engine(loaded.weights, loaded.config, threads=2, cache_dir=Path(cache))
        hf = hf_model(loaded.weights, loaded.config)
        arrays = list(loaded.weights.values())
        weight_mb = sum(a.nbytes for a in arrays) / 2**20

        def stream() -> None:  # read every weight byte once
            for a in arrays:
                np.add.reduce(a, axis=None)

        rng = np.random.default_rng(0)
        ids_all = rng.integers(0, loaded.config.vocab_size, 128).tolist()
        print(f"weights: {weight_mb:.0f} MB fp32; threads: 2 each; repeats: {args.repeats} (medians)")
        print(f"{'T':>4} {'onnx ms':>9} {'torch ms':>9} {'ratio':>7} {'floor ms':>9} {'x floor':>8}")
        ratio_t32 = float("nan")
        for t in (8, 32, 128):
            ids = ids_all[:t]
            ids_t = torch.tensor([ids])

            def run_torch(ids_t=ids_t) -> None:
                with torch.no_grad():
                    hf(ids_t, output_attentions=True, output_hidden_states=True)

            # interleave the three measurements so drift in machine load hits them alike
            ours, theirs, floor = [], [], []
            for _ in range(3):
                ours.append(median_ms(lambda ids=ids: engine.trace(ids), args.repeats // 3 + 1))
                theirs.append(median_ms(run_torch, args.repeats // 3 + 1))
                floor.append(median_ms(stream, args.repeats // 3 + 1))
            o, th, fl = statistics.median(ours), statistics.median(theirs), statistics.median(floor)
            print(f"{t:>4} {o:>9.1f} {th:>9.1f} {o / th:>7.2f} {fl:>9.1f} {o / fl:>8.2f}")
            if t == 32:
                ratio_t32 = o / th

        prefix = engine.trace(ids_all[:63])
        full, append = [], []
        for _ in range(3):
            full.append(median_ms(lambda: engine.trace(ids_all[:64]), args.repeats // 3 + 1))
            append.append(median_ms(lambda: engine.extend(prefix, ids_all[63:64]), args.repeats // 3 + 1))
        f, a = statistics.median(full), statistics.median(append)
        print(f"append 1 token to 63: {a:.1f} ms; full trace of 64: {f:.1f} ms; ratio {a / f:.2f}")
    print(f"ratio_vs_torch_T32={ratio_t32:.3f}")


if __name__ == "__main__":
    main()
