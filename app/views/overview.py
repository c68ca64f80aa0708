"""The overview: a Sankey-style picture of the whole forward pass, with each token's stream drawn.

tokens -> embedding -> block 1 … block N (a stack, or side by side when expanded) -> final LayerNorm and
unembedding -> the next-token probabilities, which fan out of the last token's stream as ribbons as wide as
their probability. Every box links to its panel. All geometry is in SVG user units, 1000 wide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.state import State, fmt_float
from app.views import markup
from app.views.colour import SAMPLED, SELECTED, STREAM
from app.views.format import num, percent, short, show
from app.views.heatmap import Label
from app.views.links import Link, link
from app.views.slider import Stop
from app.views.tokens import selected_index
from model import Sampling, Token, Trace

WIDTH = 1000.0
TOP = 100.0  # first stream row starts here
X_LABEL, X_EMBED, W_EMBED = 112.0, 120.0, 56.0
X_PLATE, W_PLATE = 206.0, 440.0
X_ATTN, W_ATTN = 246.0, 110.0
X_MLP, W_MLP = 452.0, 90.0
X_FINAL, W_FINAL = 682.0, 56.0
X_CAND = 836.0
CANDIDATES = 5


@dataclass(frozen=True)
class Box:
    """A clickable component (or a decoration when kind is "back")."""

    x: float
    y: float
    w: float
    h: float
    title: str
    link: Link
    selected: bool = False
    kind: str = "node"  # node | plate | back | nav | sub | mark
    text: Label | None = None


@dataclass(frozen=True)
class Stream:
    """One token's residual stream, a horizontal band."""

    x: float
    y: float  # top edge
    w: float
    h: float
    label: Label
    title: str
    link: Link
    selected: bool
    fill: str


@dataclass(frozen=True)
class Curve:
    """A path: an attention link or a probability ribbon."""

    d: str
    title: str
    value: str  # the probability it stands for, for data-value
    stroke: str = "none"
    width: float = 0.0
    fill: str = "none"


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    r: float


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
    cut: bool = False  # top-k / top-p cut it: no ribbon, greyed


@dataclass(frozen=True)
class FanStop:
    """The fan at one temperature: its ribbons, candidates and, when the filter cuts one of the candidates,
    the cut line across the fan (x0, x1, y)."""

    cls: str  # the slider stop it is drawn for (app/views/slider.py), e.g. "s9"
    temperature: str
    ribbons: list[Curve]
    candidates: list[Candidate]
    others: Label | None
    cut: tuple[float, float, float] | None


@dataclass(frozen=True)
class Fan:
    """The right end of the overview, the only part that sampling changes: ribbons and next-token candidates,
    drawn for each stop of the temperature slider (one stop in an export).

    Drawn as an SVG of its own inside the overview's, so that the page can fill in its own."""

    width: float
    height: float
    stops: list[FanStop]
    href: str  # the output panel: an anchor on the page, a permalink in an export
    label: str  # where the link goes (its name starts with that; the shown stop's candidates follow)
    output_box: tuple[float, float, float, float]

    def svg(self, base: str = "", oob: bool = False) -> Markup:
        """The fan as SVG markup (app/views/markup.py writes it in one pass)."""
        return markup.fan(self, base, oob)


@dataclass(frozen=True)
class Layout:
    """Where the token rows go, from the number of tokens alone."""

    ys: list[float]
    row: float
    band: float
    font: float
    area: float

    @property
    def bottom(self) -> float:
        return TOP + self.area


def layout(n: int) -> Layout:
    row = min(30.0, max(9.0, 320.0 / n))
    area = max(n * row, CANDIDATES * 34.0 + 50)
    offset = (area - n * row) / 2
    ys = [TOP + offset + (i + 0.5) * row for i in range(n)]
    return Layout(ys=ys, row=row, band=min(14.0, row * 0.5), font=min(14.0, max(8.0, row * 0.55)), area=area)


@dataclass(frozen=True)
class Overview:
    width: float
    height: float
    headers: list[Label]
    streams: list[Stream]
    boxes: list[Box]
    curves: list[Curve]
    fan: Fan | str  # markup: a page drawn once for many samplings fills in each one's own ribbons
    dots: list[Dot]
    expanded: bool
    expand_link: Link
    font: float
    layer: int
    head: int
    n_layer: int


def _ribbon(x0: float, a0: float, b0: float, x1: float, a1: float, b1: float) -> str:
    """A band from the vertical span a0..b0 at x0 to a1..b1 at x1, with smooth S-shaped edges."""
    xm = (x0 + x1) / 2
    return (
        f"M{x0:.1f},{a0:.2f} C{xm:.1f},{a0:.2f} {xm:.1f},{a1:.2f} {x1:.1f},{a1:.2f} "
        f"L{x1:.1f},{b1:.2f} C{xm:.1f},{b1:.2f} {xm:.1f},{b0:.2f} {x0:.1f},{b0:.2f} Z"
    )


def _blocks(
    trace: Trace, state: State, ys: list[float], band: float, area: float, chosen: int, words: list[str]
) -> tuple[list[Box], list[Curve], list[Dot]]:
    """The transformer blocks: a stack showing the selected block's insides, or all blocks side by side."""
    cfg = trace.config
    layer, head = state.layer - 1, state.head - 1
    boxes: list[Box] = []
    curves: list[Curve] = []
    dots: list[Dot] = []
    plate_y, plate_h = TOP - 56, area + 64
    if state.expand:
        slot = W_PLATE / cfg.n_layer
        for b in range(cfg.n_layer):
            x = X_PLATE + b * slot
            number = Label(x + slot / 2, TOP - 36, str(b + 1), "middle", b == layer) if slot >= 12 else None
            boxes.append(
                Box(
                    x + 1,
                    plate_y,
                    slot - 2,
                    plate_h,
                    _("block {n}").format(n=b + 1),
                    link(state, "panel", layer=b + 1),
                    b == layer,
                    "plate",
                    number,
                )
            )
            for k, (what, view) in enumerate(((_("attention"), "attention"), (_("MLP"), "mlp"))):
                boxes.append(
                    Box(
                        x + slot * (0.12 + 0.42 * k),
                        TOP - 8,
                        slot * 0.34,
                        area + 16,
                        _("block {n}: {what}").format(n=b + 1, what=what),
                        link(state, "panel", view=view, layer=b + 1),
                        b == layer and state.view == view,
                        "sub",
                    )
                )
        return boxes, curves, dots

    for k in (2, 1):  # the stack: plates peeking out behind the selected block
        if cfg.n_layer > k:
            boxes.append(
                Box(X_PLATE + 7 * k, plate_y - 7 * k, W_PLATE, plate_h, "", link(state), kind="back")
            )
    boxes.append(
        Box(
            X_PLATE,
            plate_y,
            W_PLATE,
            plate_h,
            _("the selected block; the others are stacked behind it"),
            link(state, "panel"),
            kind="plate",
            text=Label(
                X_PLATE + 10,
                TOP - 37,
                _("Block {n} of {total}").format(n=state.layer, total=cfg.n_layer),
                "start",
            ),
        )
    )
    nav_w = min(22.0, (W_PLATE - 150) / cfg.n_layer)
    for b in range(cfg.n_layer):
        x = X_PLATE + 140 + b * nav_w
        number = (
            Label(x + (nav_w - 3) / 2, TOP - 38, str(b + 1), "middle", b == layer) if nav_w >= 14 else None
        )
        boxes.append(
            Box(
                x,
                TOP - 50,
                nav_w - 3,
                17,
                _("block {n}").format(n=b + 1),
                link(state, "panel", layer=b + 1),
                b == layer,
                "nav",
                number,
            )
        )
    boxes += [
        Box(
            X_ATTN,
            TOP - 8,
            W_ATTN,
            area + 16,
            _(
                "block {block}: LayerNorm, then {heads} attention heads "
                "(lines: head {head}, for the selected token)"
            ).format(block=state.layer, heads=cfg.n_head, head=state.head),
            link(state, "panel", view="attention"),
            state.view == "attention",
            "sub",
            Label(
                X_ATTN + W_ATTN / 2, TOP - 14, _("Attention · head {head}").format(head=state.head), "middle"
            ),
        ),
        Box(
            X_MLP,
            TOP - 8,
            W_MLP,
            area + 16,
            _("block {block}: LayerNorm, then the MLP (bars: size of its output per token)").format(
                block=state.layer
            ),
            link(state, "panel", view="mlp"),
            state.view == "mlp",
            "sub",
            Label(X_MLP + W_MLP / 2, TOP - 14, _("MLP"), "middle"),
        ),
    ]
    probs = trace[f"block{layer}.attn.probs"][head]
    y_q = ys[chosen]
    x0, x1 = X_ATTN + 4, X_ATTN + W_ATTN - 4
    for j in range(chosen + 1):
        p = float(probs[chosen, j])
        d = f"M{x0},{ys[j]:.2f} C{x0 + 50},{ys[j]:.2f} {x1 - 50},{y_q:.2f} {x1},{y_q:.2f}"
        curves.append(
            Curve(
                d=d,
                stroke=SELECTED,
                width=max(0.6, 12 * p),
                value=f"{p:.9g}",
                title=_("{reader} reads {pct} from {read} (block {block}, head {head})").format(
                    reader=f"“{words[chosen]}”",
                    pct=percent(p),
                    read=f"“{words[j]}”",
                    block=state.layer,
                    head=state.head,
                ),
            )
        )
    out = np.linalg.norm(trace[f"block{layer}.mlp.out"].astype(np.float64), axis=-1)
    top_out = float(out.max()) or 1.0
    for i, y in enumerate(ys):
        w = (W_MLP - 16) * float(out[i]) / top_out
        boxes.append(
            Box(
                X_MLP + 8,
                y - band * 0.35,
                max(w, 1.0),
                band * 0.7,
                _("size of the MLP's output for {tok}: {size}").format(tok=f"“{words[i]}”", size=num(out[i])),
                link(state, "panel", view="mlp", token=i + 1),
                i == chosen,
                "mark",
            )
        )
        dots += [
            Dot(X_ATTN + W_ATTN + 14, y, min(5.0, band * 0.45)),
            Dot(X_MLP + W_MLP + 14, y, min(5.0, band * 0.45)),
        ]
    return boxes, curves, dots


def overview_view(trace: Trace, state: State, fan: Fan | str, tok: Callable[[int], Token]) -> Overview:
    """Geometry of the overview for this trace and state, with its ribbons drawn for a sampling (`fan_view`),
    or markup standing in for them."""
    cfg = trace.config
    n = trace.n_tokens
    chosen = selected_index(state, n)
    lay = layout(n)
    ys, band, font, area, bottom = lay.ys, lay.band, lay.font, lay.area, lay.bottom
    words = [show(tok(i).label) for i in trace.ids]

    headers = [
        Label(X_EMBED + W_EMBED / 2, 18, _("Embedding"), "middle"),
        Label(X_PLATE + W_PLATE / 2, 18, _("{n} transformer blocks").format(n=cfg.n_layer), "middle"),
        Label(X_FINAL + W_FINAL / 2, 18, _("Unembed"), "middle"),
        Label(X_CAND + 60, 18, _("Next token"), "middle"),
    ]
    streams = []
    for i, y in enumerate(ys):
        sel = i == chosen
        streams.append(
            Stream(
                x=X_LABEL + 2,
                y=y - band / 2,
                w=X_FINAL - X_LABEL - 2,
                h=band,
                selected=sel,
                label=Label(X_LABEL - 4, y, short(tok(trace.ids[i]).label, 12), "end", sel),
                fill=SELECTED if sel else STREAM,
                link=link(state, "panel", view="residual", token=i + 1),
                title=_("token {n}, {tok} (id {id}): its residual stream").format(
                    n=i + 1, tok=f"“{words[i]}”", id=trace.ids[i]
                ),
            )
        )
    boxes = [
        Box(
            X_EMBED,
            TOP - 8,
            W_EMBED,
            area + 16,
            _("Embedding: a token vector plus a position vector"),
            link(state, "panel", view="embedding"),
            state.view == "embedding",
        )
    ]
    block_boxes, curves, dots = _blocks(trace, state, ys, band, area, chosen, words)
    boxes += block_boxes
    boxes.append(
        Box(
            X_FINAL,
            TOP - 8,
            W_FINAL,
            area + 16,
            _(
                "final LayerNorm, then the unembedding: the token-embedding table, transposed (no bias), "
                "gives one score per vocabulary entry"
            ),
            link(state, "output"),
        )
    )

    return Overview(
        width=WIDTH,
        height=bottom + 16,
        headers=headers,
        streams=streams,
        boxes=boxes,
        curves=curves,
        fan=fan,
        dots=dots,
        expanded=state.expand,
        expand_link=link(state, "overview", expand=not state.expand),
        font=font,
        layer=state.layer,
        head=state.head,
        n_layer=cfg.n_layer,
    )


def fan_stop(cls: str, s: Sampling, tok: Callable[[int], Token], lay: Layout) -> FanStop:
    """The ribbons and candidates at the end of the overview, for one sampling."""
    # The last token's stream fans out into the likeliest next tokens, each ribbon as wide as its probability.
    ys, area, bottom = lay.ys, lay.area, lay.bottom
    ids = [int(i) for i in s.top(CANDIDATES)]  # the same at every temperature: the ranking
    if s.token not in ids:
        ids.append(s.token)
    span = min(area - 8, 150.0)
    src = min(max(ys[-1] - span / 2, TOP - 4), bottom + 4 - span)
    step = (area - 20) / (len(ids) + 1)
    x0, x1 = X_FINAL + W_FINAL, X_CAND
    ribbons, candidates = [], []
    cut = None
    for k, i in enumerate(ids):
        p = float(s.probs[i])
        h = span * p
        yc = TOP + step * (k + 0.5)
        label = show(tok(i).label)
        kept = p > 0
        if kept:
            ribbons.append(
                Curve(
                    d=_ribbon(x0, src, src + h, x1, yc - h / 2, yc + h / 2),
                    fill=SELECTED,
                    title=f"{label!r}: {percent(p)}",
                    value=f"{p:.9g}",
                )
            )
        elif cut is None:
            cut = (x0, WIDTH - 8, round(yc - step / 2, 2))  # between the last kept candidate and this one
        src += h
        th = max(h, 2.0)
        mark = "★ " if i == s.token else ""
        shown = percent(p) if kept else _("cut")
        candidates.append(
            Candidate(
                id=i,
                x=x1,
                y=yc - th / 2,
                h=th,
                fill=SAMPLED if i == s.token else SELECTED if kept else STREAM,
                title=f"{label!r}: {percent(p)}",
                prob=f"{p:.9g}",
                sampled=i == s.token,
                cut=not kept,
                text=Label(x1 + 12, yc, f"{mark}{short(tok(i).label, 11)}  {shown}", "start", i == s.token),
            )
        )
    kept_shown = sum(1 for c in candidates if not c.cut)
    rest = max(0.0, 1.0 - float(sum(s.probs[i] for i in ids)))
    others = None
    if s.kept_count > kept_shown:
        h = span * rest
        yc = TOP + step * (len(ids) + 0.5)
        ribbons.append(
            Curve(
                d=_ribbon(x0, src, src + h, x1, yc - h / 2, yc + h / 2),
                fill=STREAM,
                title=_("all other tokens: {pct}").format(pct=percent(rest)),
                value=f"{rest:.9g}",
            )
        )
        others = Label(
            x1 + 12,
            yc,
            _("{n} others  {pct}").format(n=s.kept_count - kept_shown, pct=percent(rest)),
            "start",
        )
    return FanStop(cls, fmt_float(s.temperature), ribbons, candidates, others, cut)


def _fan(stops: list[FanStop], href: str, lay: Layout) -> Fan:
    return Fan(
        width=WIDTH,
        height=lay.bottom + 16,
        stops=stops,
        href=href,
        label=_("the next-token probabilities: open the output panel"),
        output_box=(X_CAND - 6, TOP - 8, WIDTH - X_CAND + 4, lay.area + 16),
    )


def fan_view(state: State, s: Sampling, tok: Callable[[int], Token], lay: Layout) -> Fan:
    """The fan for one sampling, linked to the output panel by a permalink (an exported figure)."""
    return _fan([fan_stop("", s, tok, lay)], link(state, "output").href, lay)


def fan_stages(
    stops: Sequence[Stop], samplings: Sequence[Sampling], tok: Callable[[int], Token], lay: Layout
) -> Fan:
    """The fan at every stop of the temperature slider (one sampling each), linked to the output panel on
    the same page: what a student sees at any temperature is already drawn."""
    drawn = [fan_stop(stop.cls, s, tok, lay) for stop, s in zip(stops, samplings, strict=True)]
    return _fan(drawn, "#output", lay)
