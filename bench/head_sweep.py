"""The "which heads matter here" sweep (every head switched off alone: L·H runs of one text, 144 for GPT-2
small) packed into as few graph runs as the packing bounds allow, against the same sweep one run per head,
measured in the same process; the same for the compare view's patching grid (A's residual copied into B's
run at every site and position: (L+1)·T runs, 104 for GPT-2 small at 8 tokens). Also what the intervention
inputs cost a trace that uses none: the graph against the same graph built without them (builder version 2's
graph), same text, same session options.

    python bench/head_sweep.py [--model random-gpt2] [--tokens 4 8 16] [--threads 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from packing import best_ms  # bench/packing.py, next to this script

from model.gpt2 import GPT2
from model.graph import build_graph
from model.intervention import graph_inputs
from model.sources import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="random-gpt2")
    p.add_argument("--tokens", type=int, nargs="+", default=[4, 8, 16], help="lengths of the text")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads (the server's --threads)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    loaded = load_model(args.model)
    weights, config = loaded.weights, loaded.config
    gpt2 = GPT2(loaded, threads=args.threads)
    heads = config.n_layer * config.n_head
    print(f"{args.model}, {args.threads} thread(s), best of {args.repeat}: the sweep of {heads} heads")
    print(
        f"{'tokens':>6}{'runs packed':>13}{'runs alone':>12}{'packed s':>10}{'alone s':>9}"
        f"{'alone/packed':>14}{'max diff':>10}"
    )
    for n in args.tokens:
        ids = [100 + 37 * i for i in range(n)]
        gpt2.trace(ids)  # the clean run, cached: both sweeps start from it
        packed, alone = gpt2.head_sweep(ids), gpt2.head_sweep(ids, per_run=1)
        worst = float(np.abs(packed.change - alone.change).max())
        t_packed, t_alone = float("inf"), float("inf")
        for _ in range(args.repeat):  # alternate, so both see the same load
            t_packed = min(t_packed, best_ms(lambda ids=ids: gpt2.head_sweep(ids), 1) / 1000)
            t_alone = min(t_alone, best_ms(lambda ids=ids: gpt2.head_sweep(ids, per_run=1), 1) / 1000)
        print(
            f"{n:>6}{packed.runs:>13}{alone.runs:>12}{t_packed:>10.2f}{t_alone:>9.2f}"
            f"{t_alone / t_packed:>14.2f}{worst:>10.1e}"
        )

    print(f"the patching grid: {config.n_layer + 1} sites x T positions")
    print(
        f"{'tokens':>6}{'runs packed':>13}{'runs alone':>12}{'packed s':>10}{'alone s':>9}"
        f"{'alone/packed':>14}{'max diff':>10}"
    )
    for n in args.tokens:
        ids = [100 + 37 * i for i in range(n)]
        source = gpt2.trace([200 + 41 * i for i in range(n)])  # prompt A: another text of the same length
        top = int(source.logit_order()[0])
        packed_p, alone_p = gpt2.patch_sweep(ids, source, top), gpt2.patch_sweep(ids, source, top, per_run=1)
        worst = float(np.abs(packed_p.probs - alone_p.probs).max())
        t_packed, t_alone = float("inf"), float("inf")
        for _ in range(args.repeat):  # alternate, so both see the same load
            t_packed = min(
                t_packed, best_ms(lambda ids=ids, s=source, t=top: gpt2.patch_sweep(ids, s, t), 1) / 1000
            )
            t_alone = min(
                t_alone,
                best_ms(lambda ids=ids, s=source, t=top: gpt2.patch_sweep(ids, s, t, per_run=1), 1) / 1000,
            )
        print(
            f"{n:>6}{packed_p.runs:>13}{alone_p.runs:>12}{t_packed:>10.2f}{t_alone:>9.2f}"
            f"{t_alone / t_packed:>14.2f}{worst:>10.1e}"
        )

    # a trace with no intervention: the graph with the intervention inputs at their defaults, and without them
    engine = gpt2.engine
    text = [(None, np.asarray([100 + 37 * i for i in range(32)], np.int64))]
    feeds = engine._feeds(text, [None])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "plain.onnx"
        plain_graph = build_graph(weights, config, interventions=False)
        onnx.save_model(
            plain_graph,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="plain.bin",
            size_threshold=1024,
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        plain = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        bare = {k: v for k, v in feeds.items() if k not in graph_inputs(config, [(0, 0, 32)], [None])}
        t_with, t_without = [], []
        for _ in range(args.repeat * 5):  # alternate, so both see the same load
            t_with.append(best_ms(lambda: engine.session.run(engine.names, feeds), 1))
            t_without.append(best_ms(lambda: plain.run(engine.names, bare), 1))
    print(
        f"a 32-token trace, no intervention: {min(t_with):.1f} ms with the inputs, "
        f"{min(t_without):.1f} ms without, ratio {min(t_with) / min(t_without):.3f}"
    )


if __name__ == "__main__":
    main()
