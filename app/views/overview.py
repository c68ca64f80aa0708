"""The overview: a Sankey-style picture of the whole forward pass, drawn with the data that flows through it.

tokens -> embedding (each token's vector, `embed.sum`, as a strip of coloured squares) -> block 1 … block N
(a stack showing the selected block's insides, or all blocks side by side when expanded: app/views/
overview_blocks.py) -> final LayerNorm (each token's `final.ln` as a strip) and unembedding -> the next-token
probabilities, which fan out of the last token's band as ribbons as wide as their probability. Every box links
to its panel; every drawn mark names its tensor (data-tensor). All geometry is in SVG user units, 1000 wide;
the height grows with the number of tokens, so that labels stay readable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.state import State
from app.views import markup
from app.views.colour import SAMPLED, SELECTED, STREAM
from app.views.format import percent, short, show
from app.views.heatmap import Label
from app.views.links import Link, link
from app.views.overview_blocks import QKV_CELL, QKV_DIMS, QKV_X, W_PLATE, X_PLATE, expanded, stacked
from app.views.overview_marks import Add, Box, Curve, Segment, Strip, strips
from app.views.tokens import selected_index
from model import Sampling, Token, Trace

WIDTH = 1000.0
TOP = 112.0  # first token row starts here; the blocks' tiles and labels sit above it
X_LABEL, X_EMBED, W_EMBED = 112.0, 120.0, 76.0
X_FINAL, W_FINAL = 680.0, 76.0
X_CAND = 846.0
CANDIDATES = 5
STRIP_DIMS, STRIP_CELL = 16, 4.0  # a vector drawn in the Embedding and Unembed boxes: its first 16 numbers


@dataclass(frozen=True)
class Stream:
    """One token's residual stream, a horizontal band, named stretch by stretch (`segments`)."""

    y: float  # top edge
    h: float
    label: Label
    title: str
    link: Link
    selected: bool
    fill: str
    segments: list[Segment]


@dataclass(frozen=True)
class Candidate:
    """A possible next token at the end of its ribbon."""

    id: int
    x: float
    y: float
    h: float
    fill: str
    title: str
    prob: str  # exact, for data-prob
    text: Label
    sampled: bool


@dataclass(frozen=True)
class Fan:
    """The right end of the overview, the only part that sampling changes: ribbons and next-token candidates.

    Drawn as an SVG of its own inside the overview's, so that a slider move swaps just this part."""

    width: float
    height: float
    ribbons: list[Curve]
    candidates: list[Candidate]
    others: Label | None
    output_link: Link
    output_box: tuple[float, float, float, float]

    def svg(self, base: str = "", oob: bool = False) -> Markup:
        """The fan as SVG markup (app/views/markup.py writes it in one pass: a slider move redraws it)."""
        return markup.fan(self, base, oob)


@dataclass(frozen=True)
class Layout:
    """Where the token rows go, from the number of tokens alone; and where the fan starts (the last token's
    band at the right edge of the Unembed box): the fan's geometry inputs, in one place."""

    ys: list[float]
    row: float
    band: float
    font: float
    area: float

    @property
    def bottom(self) -> float:
        return TOP + self.area

    @property
    def fan_x(self) -> float:
        """Where the ribbons leave the Unembed box."""
        return X_FINAL + W_FINAL

    @property
    def source(self) -> tuple[float, float]:
        """The last token's band, where the ribbons leave: (top edge, height)."""
        return self.ys[-1] - self.band / 2, self.band


def layout(n: int) -> Layout:
    """Rows 22 to 30 units apart (labels of 12 to 14 units): the picture grows taller with the text."""
    row = min(30.0, max(22.0, 320.0 / n))
    area = max(n * row, CANDIDATES * 34.0 + 50)
    offset = (area - n * row) / 2
    ys = [TOP + offset + (i + 0.5) * row for i in range(n)]
    return Layout(ys=ys, row=row, band=min(14.0, row * 0.5), font=min(14.0, max(12.0, row * 0.5)), area=area)


@dataclass(frozen=True)
class Overview:
    width: float
    height: float
    headers: list[Label]
    streams: list[Stream]
    boxes: list[Box]
    curves: list[Curve]
    adds: list[Add]
    strips: list[Strip]
    fan: Fan | str  # markup: a page drawn once for many samplings fills in each one's own ribbons
    expanded: bool
    expand_link: Link
    font: float
    layer: int
    head: int
    n_layer: int
    qkv: list[Label]  # "q", "k", "v" over their strips (stacked view)


def _ribbon(x0: float, a0: float, b0: float, x1: float, a1: float, b1: float) -> str:
    """A band from the vertical span a0..b0 at x0 to a1..b1 at x1, with smooth S-shaped edges."""
    xm = (x0 + x1) / 2
    return (
        f"M{x0:.1f},{a0:.2f} C{xm:.1f},{a0:.2f} {xm:.1f},{a1:.2f} {x1:.1f},{a1:.2f} "
        f"L{x1:.1f},{b1:.2f} C{xm:.1f},{b1:.2f} {xm:.1f},{b0:.2f} {x0:.1f},{b0:.2f} Z"
    )


def overview_view(trace: Trace, state: State, fan: Fan | str, tok: Callable[[int], Token]) -> Overview:
    """Geometry of the overview for this trace and state, with its ribbons drawn for a sampling (`fan_view`),
    or markup standing in for them."""
    cfg = trace.config
    n = trace.n_tokens
    chosen = selected_index(state, n)
    lay = layout(n)
    ys, band, area = lay.ys, lay.band, lay.area
    words = [show(tok(i).label) for i in trace.ids]
    draw = expanded if state.expand else stacked
    blocks = draw(trace, state, ys, band, TOP, area, chosen, words)

    headers = [
        Label(X_EMBED + W_EMBED / 2, 18, _("Embedding"), "middle"),
        Label(X_PLATE + W_PLATE / 2, 18, _("{n} transformer blocks").format(n=cfg.n_layer), "middle"),
        Label(X_FINAL + W_FINAL / 2, 18, _("Unembed"), "middle"),
        Label(X_CAND + 60, 18, _("Next token"), "middle"),
    ]
    last = f"block{cfg.n_layer - 1}.resid.out"
    streams = []
    for i, y in enumerate(ys):
        sel = i == chosen
        streams.append(
            Stream(
                y=y - band / 2,
                h=band,
                selected=sel,
                label=Label(X_LABEL - 4, y, short(tok(trace.ids[i]).label, 12), "end", sel),
                fill=SELECTED if sel else STREAM,
                link=link(state, "panel", view="residual", token=i + 1),
                title=_("token {n}, {tok} (id {id}): its residual stream").format(
                    n=i + 1, tok=f"“{words[i]}”", id=trace.ids[i]
                ),
                segments=[
                    Segment(X_LABEL + 2, X_PLATE - X_LABEL - 2, "embed.sum"),
                    *blocks.segments[i],
                    Segment(X_PLATE + W_PLATE, X_FINAL + W_FINAL - X_PLATE - W_PLATE, last),
                ],
            )
        )
    box_y, box_h = TOP - 14, area + 22
    boxes = [
        Box(
            X_EMBED,
            box_y,
            W_EMBED,
            box_h,
            _(
                "Embedding: a token vector plus a position vector (squares: the first {k} numbers of each "
                "sum)"
            ).format(k=STRIP_DIMS),
            link(state, "panel", view="embedding"),
            state.view == "embedding",
        ),
        *blocks.boxes,
        Box(
            X_FINAL,
            box_y,
            W_FINAL,
            box_h,
            _(
                "final LayerNorm (squares: the first {k} numbers of each token's), then the unembedding: the "
                "token-embedding table, transposed (no bias), gives one score per vocabulary entry"
            ).format(k=STRIP_DIMS),
            link(state, "output"),
        ),
    ]
    h = band * 0.8
    x_in = X_EMBED + (W_EMBED - STRIP_DIMS * STRIP_CELL) / 2
    x_out = X_FINAL + (W_FINAL - STRIP_DIMS * STRIP_CELL) / 2
    vectors = [
        *strips(
            "embed.sum",
            _first(trace, "embed.sum"),
            x_in,
            STRIP_CELL,
            ys,
            h,
            words,
            _("its vector entering block 1"),
            cfg.n_embd,
        ),
        *strips(
            "final.ln",
            _first(trace, "final.ln"),
            x_out,
            STRIP_CELL,
            ys,
            h,
            words,
            _("its vector after the final LayerNorm"),
            cfg.n_embd,
        ),
    ]
    qkv = (
        []
        if state.expand
        else [
            Label(x + QKV_DIMS * QKV_CELL / 2, TOP - 5, part, "middle")
            for x, part in zip(QKV_X, "qkv", strict=True)
        ]
    )
    return Overview(
        width=WIDTH,
        height=lay.bottom + 16,
        headers=headers,
        streams=streams,
        boxes=boxes,
        curves=blocks.curves,
        adds=blocks.adds,
        strips=vectors + blocks.strips,
        fan=fan,
        expanded=state.expand,
        expand_link=link(state, "overview", expand=not state.expand),
        font=lay.font,
        layer=state.layer,
        head=state.head,
        n_layer=cfg.n_layer,
        qkv=qkv,
    )


def _first(trace: Trace, name: str) -> np.ndarray:
    return trace[name][:, :STRIP_DIMS].astype(np.float64)


def fan_view(state: State, s: Sampling, tok: Callable[[int], Token], lay: Layout) -> Fan:
    """The ribbons and candidates at the end of the overview, for this sampling."""
    # The last token's stream fans out into the likeliest next tokens, each ribbon as wide as its probability.
    area, bottom = lay.area, lay.bottom
    ids = [int(i) for i in s.kept_top(CANDIDATES)]
    if s.token not in ids:
        ids.append(s.token)
    span = min(area - 8, 150.0)
    src, band = lay.source  # the ribbons leave the last token's band, each as wide as its share of it
    step = (area - 20) / (len(ids) + 1)
    x0, x1 = lay.fan_x, X_CAND
    ribbons, candidates = [], []
    for k, i in enumerate(ids):
        p = float(s.probs[i])
        h = span * p
        yc = TOP + step * (k + 0.5)
        label = show(tok(i).label)
        ribbons.append(
            Curve(
                d=_ribbon(x0, src, src + band * p, x1, yc - h / 2, yc + h / 2),
                fill=SELECTED,
                title=f"{label!r}: {percent(p)}",
                value=f"{p:.9g}",
            )
        )
        src += band * p
        th = max(h, 2.0)
        mark = "★ " if i == s.token else ""
        candidates.append(
            Candidate(
                id=i,
                x=x1,
                y=yc - th / 2,
                h=th,
                fill=SAMPLED if i == s.token else SELECTED,
                title=f"{label!r}: {percent(p)}",
                prob=f"{p:.9g}",
                sampled=i == s.token,
                text=Label(
                    x1 + 12, yc, f"{mark}{short(tok(i).label, 11)}  {percent(p)}", "start", i == s.token
                ),
            )
        )
    rest = max(0.0, 1.0 - float(sum(s.probs[i] for i in ids)))
    others = None
    if s.kept_count > len(ids):
        h = span * rest
        yc = TOP + step * (len(ids) + 0.5)
        ribbons.append(
            Curve(
                d=_ribbon(x0, src, src + band * rest, x1, yc - h / 2, yc + h / 2),
                fill=STREAM,
                title=_("all other tokens: {pct}").format(pct=percent(rest)),
                value=f"{rest:.9g}",
            )
        )
        others = Label(
            x1 + 12, yc, _("{n} others  {pct}").format(n=s.kept_count - len(ids), pct=percent(rest)), "start"
        )
    return Fan(
        width=WIDTH,
        height=bottom + 16,
        ribbons=ribbons,
        candidates=candidates,
        others=others,
        output_link=link(state, "output"),
        output_box=(X_CAND - 6, TOP - 8, WIDTH - X_CAND + 4, area + 16),
    )
