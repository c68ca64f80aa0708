"""The KV cache: the keys and values every earlier token left behind, which each new token reads.

GPT-2 generates one token at a time. Under the causal mask an earlier token's key and value never change, so
they are computed once and kept (model/gpt2.py reuses a cached prefix's `block{i}.k` and `block{i}.v` as the
graph's `past.{i}.k|v` inputs): a new token computes only its own q, k and v in each block and head, and its
query meets every cached key. This panel shows one block and head's cache, the prompt's rows and the
generated tokens' rows apart; its numbers are the trace's `block{i}.k` and `block{i}.v`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.format import num, short, show
from app.views.heatmap import Axes, Heatmap, Look, Marks, heatmap
from app.views.links import Link, link
from app.views.memo import memo
from app.views.vectors import Vector, played_dims, vector
from model import Token, Trace

DIMS = 16  # of a head's D numbers per key or value, drawn (the exports have them all)
KEYS = 24  # the newest token's scores drawn for at most this many keys (the latest ones)


@dataclass(frozen=True)
class Part:
    """The cached rows of one tensor (k or v) for one part of the text (the prompt or the generated)."""

    title: str
    map: Heatmap
    first: int  # the first row's position, from 0


@dataclass(frozen=True)
class Step:
    """One model run that filled the cache: Run (the prompt) or one Generate."""

    label: str
    tokens: str  # the tokens it computed q, k and v for
    computed: int  # how many tokens' q, k and v it computed (per block and head)
    read: int  # how many earlier tokens' keys and values it read from the cache
    newest: bool


@dataclass(frozen=True)
class Drawn:
    """The numbers of one block and head's cache: the same for every student, kept with the trace."""

    keys: list[Part]
    values: list[Part]
    query: Vector  # the newest token's q (its first DIMS numbers)
    scores: Vector  # its q·k with the cached keys (the latest KEYS of them)
    steps: list[Step]


@dataclass(frozen=True)
class Kv:
    layer: int
    head: int
    n_layer: int
    n_head: int
    head_dim: int
    dims: int
    n_tokens: int
    n_prompt: int
    n_generated: int
    drawn: Drawn
    newest: str  # the newest token, quoted
    cache_numbers: int  # numbers the whole cache holds: 2 · blocks · heads · tokens · D
    cache_size: str  # the same in bytes, for people
    blocks: list[tuple[int, Link, bool]]
    heads: list[tuple[int, Link, bool]]


def kv_view(trace: Trace, state: State, tok: Callable[[int], Token]) -> Kv:
    """Block `state.layer`, head `state.head`'s cached keys and values, prompt and generated apart."""
    cfg = trace.config
    b, h = state.layer - 1, state.head - 1
    n = trace.n_tokens
    generated = min(len(state.gen), n - 1)  # the prompt has at least one token
    present = state.present
    drawn = memo(
        trace, ("kv", b, h, generated, present), lambda: _draw(trace, b, h, n - generated, tok, present)
    )
    numbers = 2 * cfg.n_layer * cfg.n_head * n * cfg.head_dim
    return Kv(
        layer=state.layer,
        head=state.head,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        head_dim=cfg.head_dim,
        dims=min(DIMS, cfg.head_dim),
        n_tokens=n,
        n_prompt=n - generated,
        n_generated=generated,
        drawn=drawn,
        newest=f"“{show(tok(trace.ids[-1]).label)}”",
        cache_numbers=numbers,
        cache_size=_bytes(4 * numbers),
        blocks=[(k + 1, link(state, "panel", layer=k + 1), k == b) for k in range(cfg.n_layer)],
        heads=[(k + 1, link(state, "panel", head=k + 1), k == h) for k in range(cfg.n_head)],
    )


def _draw(trace: Trace, b: int, h: int, prompt: int, tok: Callable[[int], Token], present: bool) -> Drawn:
    n = trace.n_tokens
    d = trace.config.head_dim
    dims = min(DIMS, d)
    labels = [f"{k + 1} {short(tok(t).label, 12)}" for k, t in enumerate(trace.ids)]
    left = 12 + 7 * max(len(s) for s in labels)  # the same for both parts, so their columns line up
    parts: dict[str, list[Part]] = {}
    for x in ("k", "v"):
        name = f"block{b}.{x}"
        rows = trace[name][h][:, :dims]  # [T, dims]: this head's cached rows
        scale = float(np.abs(rows).max()) or 1.0
        spans = [(_("the prompt's, computed by Run"), 0, prompt)]
        if prompt < n:
            spans.append((_("the generated tokens', one per Generate"), prompt, n))
        parts[x] = [
            Part(
                title,
                _map(name, rows[lo:hi], labels[lo:hi], scale, n - 1 - lo if hi == n else None, left),
                lo,
            )
            for title, lo, hi in spans
        ]
    q = trace[f"block{b}.q"][h, n - 1]  # [D]: the only query the newest token computed
    first = max(0, n - played_dims(KEYS, present))
    scores = trace[f"block{b}.attn.scores"][h, n - 1, first:]  # [keys]
    steps = [Step(_("Run"), " ".join(labels[:prompt]), prompt, 0, prompt == n)]
    steps += [
        Step(_("Generate {k}").format(k=k - prompt + 1), labels[k], 1, k, k == n - 1)
        for k in range(prompt, n)
    ]
    return Drawn(
        keys=parts["k"],
        values=parts["v"],
        query=vector(
            f"block{b}.q",
            q[: played_dims(dims, present)],
            total=d,
            caption=_("its query, head {h}").format(h=h + 1),
        ),
        scores=vector(
            f"block{b}.attn.scores",
            scores,
            indices=range(first, n),
            total=n,
            caption=_("its query · each cached key (the index is the key's position, from 0)"),
        ),
        steps=steps,
    )


def _map(
    name: str, rows: np.ndarray, labels: list[str], scale: float, newest: int | None, left: float
) -> Heatmap:
    axes = Axes(labels, [str(c) for c in range(rows.shape[1])], left, 16, describe=_("{row}, number {col}: "))
    return heatmap(name, rows, axes, Look(cell=18, scale=scale), Marks(row=newest))


def _bytes(n: int) -> str:
    """A size for people: 12.3 kB, 4.56 MB."""
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{num(n / size)} {unit}"
    return f"{n} B"
