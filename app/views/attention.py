"""The attention panel for one (block, head): the computation step by step, and every head's pattern."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import N_, _
from app.state import STEPS, State
from app.views.format import MINUS, TIMES, Table, num, short, show, table
from app.views.heatmap import Heatmap, heatmap, pool_max
from app.views.links import Link, link
from app.views.memo import memo
from app.views.tokens import selected_index
from model import Token, Trace

DIMS = 16  # columns drawn of a [T, D] or [T, C] matrix
THUMB_BINS = 24  # the all-heads grid shows at most 24 x 24 squares per head (the largest of each block)

TITLES = {
    "qkv": N_("Q, K, V"),
    "scores": N_("q · kᵀ"),
    "scaled": N_("÷ √d"),
    "masked": N_("causal mask"),
    "probs": N_("softmax"),
    "heads": N_("· V"),
    "concat": N_("concat heads"),
    "out": N_("projection"),
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
    map_labels: list[str]  # the accessible name of each map
    tables: list[Table]
    sentences: list[str]
    thumbs: list[HeadThumb]
    selected_label: str
    n_tokens: int = 0
    thumb_block: int = 1  # how many tokens one thumbnail square stands for, along each side


def _square(
    name: str,
    m: np.ndarray,
    labels: list[str],
    chosen: int,
    signed: bool,
    mark: tuple[int, int] | None = None,
) -> Heatmap:
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
        describe=_("query {row}, key {col}: "),
        mark=mark,
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
        describe=_("{row}, dimension {col}: "),
    )


@dataclass(frozen=True)
class StepContent:
    """What one attention step shows for one (block, head, token): the same for every student."""

    maps: list[Heatmap]
    titles: list[str]
    tables: list[Table]
    sentences: list[str]


def _step_content(
    trace: Trace,
    b: int,
    h: int,
    step: str,
    chosen: int,
    mark: tuple[int, int] | None,
    tok: Callable[[int], Token],
) -> StepContent:
    cfg = trace.config
    labels = [short(tok(i).label, 12) for i in trace.ids]
    p = f"block{b}"
    d = cfg.head_dim
    dims = min(DIMS, d)
    who = show(tok(trace.ids[chosen]).label)
    head = h + 1
    maps: list[Heatmap] = []
    titles: list[str] = []
    tables: list[Table] = []
    if step == "qkv":
        for part in ("q", "k", "v"):
            m = trace[f"{p}.{part}"][h]
            maps.append(_wide(f"{p}.{part}", m, labels, chosen, left=96 if part == "q" else 0))
            titles.append(part.upper())
            tables.append(
                table(
                    _("{name}, head {head}, first {dims} of {d}").format(
                        name=f"{p}.{part}", head=head, dims=dims, d=d
                    ),
                    m[:, :dims],
                    labels,
                    [str(c) for c in range(dims)],
                    chosen,
                )
            )
        sentences = [
            _(
                "LayerNorm first rescales each token's vector; then three learned matrices turn it into a "
                "query (what this token looks for), a key (what it offers) and a value (what it passes on), "
                "each {d} numbers per head."
            ).format(d=d),
            _("Drawn: the first {dims} of {d} numbers of head {head}, one row per token.").format(
                dims=dims, d=d, head=head
            ),
        ]
    elif step in ("scores", "scaled", "masked", "probs"):
        name = f"{p}.attn.{step}"
        m = trace[name][h]
        maps.append(_square(name, m, labels, chosen, signed=step != "probs", mark=mark))
        titles.append(_(TITLES[step]))
        tables.append(
            table(
                _("{name}, head {head} (rows: queries, columns: keys)").format(name=name, head=head),
                m,
                labels,
                labels,
                chosen,
            )
        )
        last = float(m[chosen, chosen])
        root = num(np.sqrt(d), 4)
        if step == "scores":
            sentences = [
                _("Each query is compared with every key by a dot product: a big score means a good match."),
                _("Row {tok}: its match with itself is {value}.").format(tok=f"“{who}”", value=num(last, 4)),
            ]
        elif step == "scaled":
            raw = num(float(trace[f"{p}.attn.scores"][h][chosen, chosen]), 4)
            sentences = [
                _(
                    "The scores are divided by √d = √{d} ≈ {root}, so that they do not grow with the head "
                    "size and the softmax stays smooth."
                ).format(d=d, root=root),
                _("Row {tok}, itself: {raw} ÷ {root} = {value}.").format(
                    tok=f"“{who}”", raw=raw, root=root, value=num(last, 4)
                ),
            ]
        elif step == "masked":
            sentences = [
                _(
                    "The causal mask: a token may only look at itself and the tokens before it, so every "
                    "score above the diagonal is set to {minus}∞ (blank here)."
                ).format(minus=MINUS),
                _("This is what lets GPT-2 learn to predict the next token without seeing it."),
            ]
        else:
            favourite = show(tok(trace.ids[int(np.argmax(m[chosen]))]).label)
            sentences = [
                _(
                    "Softmax turns each row into probabilities that add up to 1: how much each token listens "
                    "to each earlier one. {minus}∞ becomes exactly 0."
                ).format(minus=MINUS),
                _("Row {tok} puts {pct} on its favourite token {favourite}.").format(
                    tok=f"“{who}”", pct=num(float(m[chosen].max()) * 100, 3) + "%", favourite=f"“{favourite}”"
                ),
            ]
    elif step == "heads":
        name = f"{p}.attn.heads"
        m = trace[name][h]
        maps.append(_wide(name, m, labels, chosen))
        titles.append(_("probabilities · V"))
        tables.append(
            table(
                _("{name}, head {head}, first {dims} of {d}").format(name=name, head=head, dims=dims, d=d),
                m[:, :dims],
                labels,
                [str(c) for c in range(dims)],
                chosen,
            )
        )
        sentences = [
            _(
                "Each token's output from this head is the average of the value vectors, weighted by its row "
                "of attention probabilities."
            ),
            _("Drawn: the first {dims} of {d} numbers.").format(dims=dims, d=d),
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
                note=_("colour: length of each head's {d}-number output, 0 to {top}").format(
                    d=d, top=num(m.max())
                ),
                describe=_("{row}, head {col}: length "),
                selected_col=h,
            )
        )
        titles.append(_("{n} heads side by side").format(n=cfg.n_head))
        tables.append(
            table(
                _("length of each head's output in {name}").format(name=name),
                m,
                labels,
                [_("head {n}").format(n=k + 1) for k in range(cfg.n_head)],
                chosen,
            )
        )
        sentences = [
            _(
                "All {h} heads run side by side; their {d}-number outputs are placed end to end, giving "
                "{h} {times} {d} = {c} numbers per token again."
            ).format(h=cfg.n_head, d=d, times=TIMES, c=cfg.n_embd),
            _("Drawn: one square per head and token, coloured by how long that head's output vector is."),
        ]
    else:  # "out"
        name = f"{p}.attn.out"
        m = trace[name]
        maps.append(_wide(name, m, labels, chosen))
        titles.append(_("output projection"))
        tables.append(
            table(
                _("{name}, first {dims} of {d}").format(name=name, dims=dims, d=cfg.n_embd),
                m[:, :dims],
                labels,
                [str(c) for c in range(dims)],
                chosen,
            )
        )
        sentences = [
            _(
                "One more learned matrix ({c} {times} {c}, plus a bias) mixes the heads' outputs. "
                "The result is added to the residual stream: that sum is {name}."
            ).format(c=cfg.n_embd, times=TIMES, name=f"{p}.resid.mid"),
            _("Drawn: the first {dims} of {d} numbers.").format(dims=dims, d=cfg.n_embd),
        ]

    return StepContent(maps, titles, tables, sentences)


def _thumbs(trace: Trace, b: int) -> list[Heatmap]:
    """The all-heads grid's pictures of block b, drawn compactly (one path per colour level, no titles or
    values: twelve small pictures that are links, so the page stays light; the open head's own map has the
    numbers); long texts are shrunk to the largest value of each block."""
    n = trace.n_tokens
    probs = trace[f"block{b}.attn.probs"]
    bins = min(n, THUMB_BINS)
    cell = min(8.0, max(2.0, math.floor(64.0 / bins * 4) / 4))  # quarter units: short path coordinates
    return [
        heatmap(
            f"block{b}.attn.probs",
            pool_max(probs[j], THUMB_BINS),
            row_labels=[""] * bins,
            col_labels=[""] * bins,
            cell=cell,
            signed=False,
            titles=False,
            compact=True,
        )
        for j in range(trace.config.n_head)
    ]


def attention_view(
    trace: Trace, state: State, tok: Callable[[int], Token], mark: tuple[int, int] | None = None
) -> Attention:
    """Every step of one head's attention in block `state.layer`; `mark` outlines one (query, key) square."""
    cfg = trace.config
    b, h = state.layer - 1, state.head - 1
    n = trace.n_tokens
    chosen = selected_index(state, n)
    d = cfg.head_dim
    who = show(tok(trace.ids[chosen]).label)
    step = state.step
    content = memo(
        trace,
        ("attention", b, h, step, chosen, mark),
        lambda: _step_content(trace, b, h, step, chosen, mark, tok),
    )

    k = STEPS.index(step)
    steps = [
        StepLink(key, i + 1, _(TITLES[key]), link(state, "panel", step=key), key == step)
        for i, key in enumerate(STEPS)
    ]
    thumbs = [
        HeadThumb(number=j + 1, link=link(state, "panel", head=j + 1), selected=j == h, map=picture)
        for j, picture in enumerate(memo(trace, ("thumbs", b), lambda: _thumbs(trace, b)))
    ]

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
        maps=content.maps,
        map_titles=content.titles,
        map_labels=[
            _("{title} for block {block}, head {head}").format(title=t, block=state.layer, head=state.head)
            for t in content.titles
        ],
        tables=content.tables,
        sentences=content.sentences,
        thumbs=thumbs,
        selected_label=who,
        n_tokens=n,
        thumb_block=-(-n // THUMB_BINS),
    )
