"""A worker's memory before and after its students open the weight views (issue 15: RSS within 5 %).

A fresh `glassbox serve` (random-gpt2 by default: GPT-2 small's shapes, 475 MB of weights) in its own
process. First every view is opened twice with its weights closed (the traces and their pictures are then
in the caches); the worker's RSS is read. Then the same views are opened twice with their weights shown:
every block's W_Q, W_K, W_V (heads 1 and 12), W_O, W_in, W_out, LayerNorm's gains and biases, the embedding
tables and the output layer, read from the graph's weights.bin (model/mapped.py). RSS is read again.

Three runs, each on a fresh worker: with the default caches, whose bounded bytes (page_cache_mb,
piece_cache_mb) also fill with the larger pages; the same with those caches first filled by other texts'
views, as on a server that has been up a while; with the finished-page and page-part caches off, so what
grows is what the weights cost (the slices read, and the pictures kept with their traces).
Last line: `rss_before_mb=<int> rss_after_mb=<int> ratio=<after / before>` (of the last run).

    python bench/weights_memory.py [--model random-gpt2] [--texts 2] [--only fresh|filled|off]
"""

from __future__ import annotations

import argparse
from urllib.parse import urlencode

from memory import Server, build_graph, fetch_all, text_of  # bench/memory.py, next to this script

TEXTS = ("Data visualization empowers users to see patterns", "The weights of a model are its memory")


def urls(base: str, texts: int, blocks: int, heads: int, weights: bool) -> list[str]:
    """Every weight view of `texts` texts: attention (q, k and v for heads 1 and the last; the output
    projection), the MLP and LayerNorm of every block, the embedding tables; with or without the weights."""
    out = []
    for t in range(texts):
        text = TEXTS[t] if t < len(TEXTS) else text_of(t, 8)
        pages: list[dict[str, object]] = [{"view": "embedding"}]
        for b in range(1, blocks + 1):
            pages += [{"view": "attention", "layer": b, "head": h, "step": "qkv"} for h in (1, heads)]
            pages += [{"view": "attention", "layer": b, "step": "out"}]
            pages += [{"view": "mlp", "layer": b}, {"view": "residual", "layer": b}]
        for p in pages:
            out.append(f"{base}/?{urlencode({'text': text, **p, **({'weights': 1} if weights else {})})}")
    return out


CACHES_OFF = ("--page-cache-mb", "0", "--piece-cache-mb", "0")


def measure(model: str, texts: int, *flags: str, fill: int = 0) -> tuple[float, float, int]:
    """(RSS after the views with their weights closed, RSS after the same views with them open, in MB; the
    number of weight views opened), on a server started with `flags`. `fill`: first open the closed views of
    that many other texts, so the caches are at their bounds before anything is measured."""
    build_graph(model, None)
    from model.sources import load_model

    cfg = load_model(model).config
    server = Server(model, None, *flags)
    try:
        others = urls(server.base, texts + fill, cfg.n_layer, cfg.n_head, weights=False)
        n, statuses = fetch_all(others[len(others) * texts // (texts + fill) :], 2)
        assert statuses == ({200: n} if n else {}), statuses
        for weights in (False, True):
            pages = urls(server.base, texts, cfg.n_layer, cfg.n_head, weights=weights)
            for _ in range(2):
                n, statuses = fetch_all(pages, 2)
                assert statuses == {200: n}, statuses
            if not weights:
                before, _ = server.memory_mb()
        after, _ = server.memory_mb()
    finally:
        server.stop()
    return before, after, len(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="random-gpt2")
    parser.add_argument("--texts", type=int, default=2)
    parser.add_argument("--only", choices=["fresh", "filled", "off"], help="one of the three runs")
    args = parser.parse_args()
    runs = {
        "fresh": ("default caches", (), 0),
        "filled": ("default caches, first filled with 6 other texts' views", (), 6),
        "off": ("page and piece caches off", CACHES_OFF, 0),
    }
    for key, (label, flags, fill) in runs.items():
        if args.only not in (None, key):
            continue
        before, after, n = measure(args.model, args.texts, *flags, fill=fill)
        print(f"{label}: {n} views, each opened twice with its weights closed, then twice with them open")
        print(f"  worker RSS, weights closed: {before:.0f} MB")
        print(
            f"  worker RSS, weights open:   {after:.0f} MB ({after - before:+.0f} MB, {after / before:.3f}x)"
        )
    print(f"rss_before_mb={before:.0f} rss_after_mb={after:.0f} ratio={after / before:.3f}")


if __name__ == "__main__":
    main()
