"""The attention panel for one (block, head): the computation step by step, and every head's pattern."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.state import STEPS, State
from app.views.common import MINUS, TIMES, Heatmap, Table, heatmap, num, short, show, table
from app.views.links import Link, link
from app.views.tokens import selected_index
from model import Token, Trace

DIMS = 16  # columns drawn of a [T, D] or [T, C] matrix

TITLES = {
    "qkv": "Q, K, V",
    "scores": "q · kᵀ",
    "scaled": "÷ √d",
    "masked": "causal mask",
    "probs": "softmax",
    "heads": "· V",
    "concat": "concat heads",
    "out": "projection",
}


@dataclass(frozen=True)
class StepLink:
    key: str
    number: int
    title: str
    link: Link
    selected: bool


@dataclass(frozen=True)
class Pick:
    """One entry of a navigator (a block or a head)."""

    number: int
    link: Link
    selected: bool


@dataclass(frozen=True)
class HeadThumb:
    """One head's attention pattern in the all-heads grid."""

    number: int
    link: Link
    selected: bool
    map: Heatmap


@dataclass(frozen=True)
class Attention:
    layer: int
    head: int
    n_head: int
    head_dim: int
    n_embd: int
    blocks: list[Pick]
    heads: list[Pick]
    prev_block: Link | None
    next_block: Link | None
    prev_head: Link | None
    next_head: Link | None
    steps: list[StepLink]
    step: str
    step_number: int
    next_step: Link | None
    prev_step: Link | None
    maps: list[Heatmap]  # what the selected step shows (Q, K and V are three)
    map_titles: list[str]
    tables: list[Table]
    sentences: list[str]
    thumbs: list[HeadThumb]
    selected_label: str


def _square(name: str, m: np.ndarray, labels: list[str], chosen: int, signed: bool) -> Heatmap:
    """A [T, T] matrix, numbers printed when the cells are big enough."""
    n = m.shape[0]
    cell = min(46.0, max(10.0, 420.0 / n))
    return heatmap(
        name,
        m,
        row_labels=labels,
        col_labels=labels if cell >= 14 else [""] * n,
        cell=cell,
        signed=signed,
        numbers=cell >= 38,
        selected_row=chosen,
        left=96,
        top=70 if cell >= 14 else 4,
        rotate=True,
        describe="query {row}, key {col}: ",
    )


def _wide(name: str, m: np.ndarray, labels: list[str], chosen: int, left: float = 96) -> Heatmap:
    """A [T, D] or [T, C] matrix: its first DIMS columns."""
    n = m.shape[0]
    cell = 14.0 if n <= 24 else max(4.0, 336.0 / n)
    part = m[:, :DIMS]
    return heatmap(
        name,
        part,
        row_labels=labels,
        col_labels=[str(c) for c in range(part.shape[1])],
        cell=cell,
        selected_row=chosen,
        left=left,
        describe="{row}, dimension {col}: ",
    )


def attention_view(trace: Trace, state: State, tok: Callable[[int], Token]) -> Attention:
    """Every step of one head's attention in block `state.layer`, with navigators."""
    cfg = trace.config
    b, h = state.layer - 1, state.head - 1
    n = trace.n_tokens
    chosen = selected_index(state, n)
    labels = [short(tok(i).label, 12) for i in trace.ids]
    p = f"block{b}"
    d = cfg.head_dim
    dims = min(DIMS, d)
    who = show(tok(trace.ids[chosen]).label)

    maps: list[Heatmap] = []
    titles: list[str] = []
    tables: list[Table] = []
    step = state.step
    if step == "qkv":
        for part in ("q", "k", "v"):
            m = trace[f"{p}.{part}"][h]
            maps.append(_wide(f"{p}.{part}", m, labels, chosen, left=96 if part == "q" else 0))
            titles.append(part.upper())
            tables.append(
                table(
                    f"{p}.{part}, head {state.head}, first {dims} of {d}",
                    m[:, :dims],
                    labels,
                    [str(c) for c in range(dims)],
                    chosen,
                )
            )
        sentences = [
            f"LayerNorm first rescales each token's vector; then three learned matrices turn it into a query "
            f"(what this token looks for), a key (what it offers) and a value (what it passes on), each {d} "
            f"numbers per head.",
            f"Drawn: the first {dims} of {d} numbers of head {state.head}, one row per token.",
        ]
    elif step in ("scores", "scaled", "masked", "probs"):
        name = f"{p}.attn.{step}"
        m = trace[name][h]
        maps.append(_square(name, m, labels, chosen, signed=step != "probs"))
        titles.append(TITLES[step])
        tables.append(
            table(f"{name}, head {state.head} (rows: queries, columns: keys)", m, labels, labels, chosen)
        )
        last = float(m[chosen, chosen])
        sentences = {
            "scores": [
                "Each query is compared with every key by a dot product: a big score means a good match.",
                f"Row {who!r}: its match with itself is {num(last, 4)}.",
            ],
            "scaled": [
                f"The scores are divided by √d = √{d} ≈ {num(np.sqrt(d), 4)}, so that they do not grow "
                "with the head size and the softmax stays smooth.",
                f"Row {who!r}, itself: {num(float(trace[f'{p}.attn.scores'][h][chosen, chosen]), 4)} ÷ "
                f"{num(np.sqrt(d), 4)} = {num(last, 4)}.",
            ],
            "masked": [
                "The causal mask: a token may only look at itself and the tokens before it, so every score "
                f"above the diagonal is set to {MINUS}∞ (blank here).",
                "This is what lets GPT-2 learn to predict the next token without seeing it.",
            ],
            "probs": [
                "Softmax turns each row into probabilities that add up to 1: how much each token listens to "
                f"each earlier one. {MINUS}∞ becomes exactly 0.",
                f"Row {who!r} puts {num(float(m[chosen].max()) * 100, 3)}% on its favourite token "
                f"{show(tok(trace.ids[int(np.argmax(m[chosen]))]).label)!r}.",
            ],
        }[step]
    elif step == "heads":
        name = f"{p}.attn.heads"
        m = trace[name][h]
        maps.append(_wide(name, m, labels, chosen))
        titles.append("probabilities · V")
        tables.append(
            table(
                f"{name}, head {state.head}, first {dims} of {d}",
                m[:, :dims],
                labels,
                [str(c) for c in range(dims)],
                chosen,
            )
        )
        sentences = [
            "Each token's output from this head is the average of the value vectors, weighted by its row of "
            "attention probabilities.",
            f"Drawn: the first {dims} of {d} numbers.",
        ]
    elif step == "concat":
        name = f"{p}.attn.heads"
        m = np.linalg.norm(trace[name].astype(np.float64), axis=-1).T  # [T, H]: size of each head's output
        maps.append(
            heatmap(
                name,
                m,
                row_labels=labels,
                col_labels=[str(k + 1) for k in range(cfg.n_head)],
                cell=22,
                signed=False,
                selected_row=chosen,
                left=96,
                top=18,
                scale=float(m.max()),
                note=f"colour: length of each head's {d}-number output, 0 to {num(m.max())}",
                describe="{row}, head {col}: length ",
                selected_col=h,
            )
        )
        titles.append(f"{cfg.n_head} heads side by side")
        tables.append(
            table(
                f"length of each head's output in {name}",
                m,
                labels,
                [f"head {k + 1}" for k in range(cfg.n_head)],
                chosen,
            )
        )
        sentences = [
            f"All {cfg.n_head} heads run side by side; their {d}-number outputs are placed end to end, "
            f"giving {cfg.n_head} {TIMES} {d} = {cfg.n_embd} numbers per token again.",
            "Drawn: one square per head and token, coloured by how long that head's output vector is.",
        ]
    else:  # "out"
        name = f"{p}.attn.out"
        m = trace[name]
        maps.append(_wide(name, m, labels, chosen))
        titles.append("output projection")
        tables.append(
            table(
                f"{name}, first {dims} of {cfg.n_embd}",
                m[:, :dims],
                labels,
                [str(c) for c in range(dims)],
                chosen,
            )
        )
        sentences = [
            f"One more learned matrix ({cfg.n_embd} {TIMES} {cfg.n_embd}, plus a bias) mixes the heads' "
            f"outputs. The result is added to the residual stream: that sum is {p}.resid.mid.",
            f"Drawn: the first {dims} of {cfg.n_embd} numbers.",
        ]

    k = STEPS.index(step)
    steps = [
        StepLink(key, i + 1, TITLES[key], link(state, "panel", step=key), key == step)
        for i, key in enumerate(STEPS)
    ]
    probs = trace[f"{p}.attn.probs"]
    cell = min(8.0, max(2.0, 64.0 / n))
    thumbs = [
        HeadThumb(
            number=j + 1,
            link=link(state, "panel", head=j + 1),
            selected=j == h,
            map=heatmap(
                f"{p}.attn.probs",
                probs[j],
                row_labels=[""] * n,
                col_labels=[""] * n,
                cell=cell,
                signed=False,
                titles=False,
            ),
        )
        for j in range(cfg.n_head)
    ]  # thumbnails carry no per-cell titles, so the page stays light

    def nav(key: str, value: int, top: int) -> Link | None:
        return link(state, "panel", **{key: value}) if 1 <= value <= top else None

    return Attention(
        layer=state.layer,
        head=state.head,
        n_head=cfg.n_head,
        head_dim=d,
        n_embd=cfg.n_embd,
        blocks=[Pick(i + 1, link(state, "panel", layer=i + 1), i == b) for i in range(cfg.n_layer)],
        heads=[Pick(j + 1, link(state, "panel", head=j + 1), j == h) for j in range(cfg.n_head)],
        prev_block=nav("layer", state.layer - 1, cfg.n_layer),
        next_block=nav("layer", state.layer + 1, cfg.n_layer),
        prev_head=nav("head", state.head - 1, cfg.n_head),
        next_head=nav("head", state.head + 1, cfg.n_head),
        steps=steps,
        step=step,
        step_number=k + 1,
        next_step=link(state, "panel", step=STEPS[k + 1]) if k + 1 < len(STEPS) else None,
        prev_step=link(state, "panel", step=STEPS[k - 1]) if k > 0 else None,
        maps=maps,
        map_titles=titles,
        tables=tables,
        sentences=sentences,
        thumbs=thumbs,
        selected_label=who,
    )
