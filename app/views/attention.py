"""The attention panel for one (block, head): the computation step by step, and every head's pattern.

What each step draws and says is app/views/attention_steps.py; this module puts the panel together: the
block and head navigators, the eight steps' links, the row q·kᵀ → ÷√d → mask → softmax → ·V (the selected
step large and playing, the others small), and the all-heads grid."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from app.i18n import _
from app.state import STEPS, State
from app.views.attention_maps import where
from app.views.attention_steps import CHAIN, STEP_CONTENT, TITLES, previews
from app.views.format import Table
from app.views.heatmap import Axes, Heatmap, Legend, Look, colour_legend, heatmap, pool_max
from app.views.links import Link, link
from app.views.memo import memo
from app.views.motion import Player, player
from app.views.tokens import selected_index
from model import Token, Trace

THUMB_BINS = 24  # the all-heads grid shows at most 24 x 24 squares per head (the largest of each block)


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
    """One head's cell in the all-heads grid: its attention pattern, a link that opens it, and any further
    links about this head (`links`: (words, link), written under its picture)."""

    number: int
    link: Link
    selected: bool
    map: Heatmap
    links: list[tuple[str, Link]] = field(default_factory=list)


@dataclass(frozen=True)
class ChainStep:
    """One step of the row q·kᵀ → ÷√d → mask → softmax → ·V: its link and its small picture."""

    key: str
    title: str
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
    inputs: list[Heatmap]  # what it reads, drawn small before it while it plays
    input_titles: list[str]
    chain: list[ChainStep]  # q·kᵀ → ÷√d → mask → softmax → ·V, side by side
    in_chain: bool  # the selected step is drawn large in the chain's row
    player: Player
    tables: list[Table]
    sentences: list[str]
    thumbs: list[HeadThumb]
    thumb_legend: Legend
    selected_label: str
    n_tokens: int = 0
    thumb_block: int = 1  # how many tokens one thumbnail square stands for, along each side


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
            Axes([""] * bins, [""] * bins),
            Look(cell=cell, signed=False, titles=False, legend=False, compact=True),
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
    step = state.step
    here = where(trace, b, h, chosen, mark, tok)
    content = memo(trace, ("attention", b, h, step, chosen, mark), lambda: STEP_CONTENT[step](here))
    small = memo(trace, ("chain", b, h), lambda: previews(trace, b, h))
    chain = [
        ChainStep(key, _(TITLES[key]), link(state, "panel", step=key), key == step, picture)
        for key, picture in zip(CHAIN, small, strict=True)
    ]

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
        head_dim=cfg.head_dim,
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
        inputs=content.inputs,
        input_titles=content.input_titles,
        chain=chain,
        in_chain=step in CHAIN,
        player=player("attention-play", content.plays, content.frames),
        tables=content.tables,
        sentences=content.sentences,
        thumbs=thumbs,
        thumb_legend=colour_legend(False, 1.0, 0, 4, 140),
        selected_label=here.who,
        n_tokens=n,
        thumb_block=-(-n // THUMB_BINS),
    )
