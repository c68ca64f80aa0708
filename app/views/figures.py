"""A panel's figure as one standalone SVG document: the page's own SVGs, laid out with a title and captions.

The parts are the view-models the page draws (heatmaps, the overview, the GELU plot, the growth chart), drawn
by the same macros (templates/figures.html). The output panel, the logit lens and the tokens are HTML on the
page; their figures here are drawn from the same view-models as bar charts and chips.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.i18n import _
from app.views.format import short
from app.views.heatmap import Axes, Label, Look, heatmap
from app.views.output import LensStep, Output
from app.views.tokens import ChipGroup

MARGIN = 24.0
GAP = 32.0
MAX_WIDTH = 1400.0  # wider rows wrap
CAPTION = 26.0


@dataclass(frozen=True)
class Part:
    """One drawing of a figure, placed at (x, y); its caption sits above it."""

    kind: str  # heatmap | sankey | gelu | growth | bars | chips
    item: Any  # the view-model the macro draws
    x: float
    y: float
    width: float
    height: float
    caption: str
    name: str  # the tensor it shows, printed beside the caption
    label: str  # the accessible name of the drawing
    cls: str
    inner_y: float  # where the drawing starts below (x, y): room for the captions of its row


@dataclass(frozen=True)
class Figure:
    width: float
    height: float
    title: str
    subtitle: str
    note: str
    note_y: float
    parts: list[Part]
    ops: list[Label]  # "+" and "=" between the embedding's three maps


@dataclass(frozen=True)
class Drawing:
    """What a panel hands to `layout`: a drawing and its size."""

    kind: str
    item: Any
    width: float
    height: float
    caption: str = ""
    name: str = ""
    label: str = ""
    cls: str = ""  # extra class of the SVG, as on the page


def layout(
    drawings: Sequence[Drawing], title: str, subtitle: str, note: str, ops: Sequence[str] = ()
) -> Figure:
    """Place the drawings left to right, wrapping into rows; a title above and a note below."""
    top = 72.0
    captioned = any(d.caption for d in drawings)
    cap = CAPTION if captioned else 0.0
    gap = GAP + (24.0 if ops else 0.0)
    parts: list[Part] = []
    labels: list[Label] = []
    x, y, row_h, width = MARGIN, top, 0.0, 0.0
    for k, d in enumerate(drawings):
        # a caption wider than its drawing takes the room it needs
        caption = _text_width(d.caption, 13, 0.6) + _text_width(d.name, 12) + 8 if d.caption else 0.0
        room = max(d.width, caption)
        if x > MARGIN and x + room > MARGIN + MAX_WIDTH:
            x, y, row_h = MARGIN, y + row_h + GAP, 0.0
        parts.append(Part(d.kind, d.item, x, y, d.width, d.height, d.caption, d.name, d.label, d.cls, cap))
        row_h = max(row_h, cap + d.height)
        width = max(width, x + room)
        x += room + gap
        if k < len(ops):
            labels.append(Label(x - gap / 2, y + cap + d.height / 2, ops[k], "middle"))
    note_y = y + row_h + 22
    return Figure(
        width=max(width + MARGIN, 480.0),
        height=note_y + (18 if note else 0) + 8,
        title=title,
        subtitle=subtitle,
        note=note,
        note_y=note_y,
        parts=parts,
        ops=labels,
    )


# ---- charts for the panels that are HTML on the page ----


@dataclass(frozen=True)
class Span:
    x: float
    text: str
    anchor: str = "start"
    cls: str = ""


@dataclass(frozen=True)
class BarRow:
    y: float  # centre line
    band_y: float  # top of the highlight band
    bar_y: float
    texts: list[Span]
    width: float
    fill: str
    cut: bool = False
    highlight: bool = False
    value: str = ""


@dataclass(frozen=True)
class BarChart:
    width: float
    height: float
    row: float
    bar_x: float
    bar_w: float
    headers: list[Label]
    rows: list[BarRow]


def _row(y: float, row: float, texts: list[Span], width: float, fill: str, **kw: Any) -> BarRow:
    return BarRow(y=y, band_y=y - row / 2, bar_y=y - 6, texts=texts, width=width, fill=fill, **kw)


def output_chart(out: Output) -> BarChart:
    """The output panel's table of likeliest next tokens, as bars."""
    row, top, bar_x, bar_w = 24.0, 34.0, 330.0, 200.0
    headers = [
        Label(28, 12, "#", "end"),
        Label(40, 12, _("token"), "start"),
        Label(240, 12, "logit", "end"),
        Label(310, 12, _("÷ T"), "end"),
        Label(bar_x, 12, _("probability"), "start"),
    ]
    rows = []
    bars = out.bars + ([out.extra] if out.extra else [])
    for k, b in enumerate(bars):
        y = top + k * row + (row if out.extra and b is out.extra else 0)
        texts = [
            Span(28, str(b.rank), "end", "muted"),
            Span(40, b.label, "start", "tok"),
            Span(240, b.logit, "end"),
            Span(310, b.scaled, "end", "muted"),
            Span(bar_x + bar_w + 10, b.prob_text, "start"),
        ]
        if b.sampled:
            texts.append(Span(bar_x + bar_w + 80, _("★ drawn"), "start", "drawn"))
        elif not b.kept:
            texts.append(Span(bar_x + bar_w + 80, _("cut"), "start", "muted"))
        rows.append(
            _row(
                y,
                row,
                texts,
                b.width * bar_w / 200.0,
                b.fill,
                cut=not b.kept,
                highlight=b.sampled,
                value=f"{b.prob:.9g}",
            )
        )
    height = top + (len(bars) + (1 if out.extra else 0)) * row
    return BarChart(bar_x + bar_w + 170, height, row, bar_x, bar_w, headers, rows)


def lens_chart(steps: Sequence[LensStep]) -> BarChart:
    """The logit lens: the top guess after each block."""
    row, top, bar_x, bar_w = 22.0, 34.0, 190.0, 160.0
    headers = [
        Label(40, 12, _("block"), "end"),
        Label(52, 12, _("top guess"), "start"),
        Label(bar_x, 12, _("probability"), "start"),
    ]
    rows = []
    for k, s in enumerate(steps):
        bold = " final" if s.final else ""
        texts = [
            Span(40, str(s.block), "end", "muted"),
            Span(52, s.label, "start", "tok" + bold),
            Span(bar_x + bar_w + 10, s.prob_text, "start", bold.strip()),
        ]
        rows.append(_row(top + k * row, row, texts, s.width * bar_w / 60.0, s.fill, value=f"{s.prob:.9g}"))
    return BarChart(bar_x + bar_w + 80, top + len(steps) * row, row, bar_x, bar_w, headers, rows)


@dataclass(frozen=True)
class ChipBox:
    x: float
    y: float
    w: float
    h: float
    cx: float
    text_y: float
    id_y: float
    label: str
    id: int
    selected: bool
    generated: bool
    partial: bool


@dataclass(frozen=True)
class WholeMark:
    brace: str  # SVG path under the chips of a character group
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class ChipsChart:
    width: float
    height: float
    chips: list[ChipBox]
    wholes: list[WholeMark]


def _text_width(text: str, size: float, narrow: float = 0.62) -> float:
    """A rough advance width: wide (CJK) characters take a full em, others `narrow` em (0.62: mono)."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else narrow * size for ch in text)


def chips_chart(groups: Sequence[ChipGroup], max_width: float = 1000.0) -> ChipsChart:
    """The token chips in rows, with the whole characters under grouped byte-level chips."""
    h, gap, pad = 40.0, 6.0, 10.0
    row_h = h + (30.0 if any(g.whole for g in groups) else 10.0)
    x, y, width = 0.0, 0.0, 0.0
    boxes: list[ChipBox] = []
    wholes: list[WholeMark] = []
    for g in groups:
        widths = [
            max(36.0, max(_text_width(c.label, 14), _text_width(str(c.id), 10)) + 2 * pad) for c in g.chips
        ]
        total = sum(widths) + gap * (len(widths) - 1)
        if x > 0 and x + total > max_width:
            x, y = 0.0, y + row_h
        start = x
        for c, w in zip(g.chips, widths, strict=True):
            label = short(c.label, 24)
            boxes.append(
                ChipBox(
                    x, y, w, h, x + w / 2, y + 14, y + 31, label, c.id, c.selected, c.generated, c.partial
                )
            )
            x += w + gap
        if g.whole is not None:
            end = x - gap
            b = y + h + 5
            brace = f"M{start + 2},{b - 3} L{start + 2},{b} L{end - 2},{b} L{end - 2},{b - 3}"
            wholes.append(WholeMark(brace, (start + end) / 2, b + 12, g.whole))
        width = max(width, x - gap)
        x += gap
    return ChipsChart(width + 2, y + row_h, boxes, wholes)


# ---- one figure per panel ----


def panel_figure(panel: str, views: dict[str, Any], subtitle: str) -> Figure:
    """The figure of `panel`, from the view-models the page draws (`views`: name -> view-model)."""
    if panel == "overview":
        o = views["overview"]
        return layout([Drawing("sankey", o, o.width, o.height)], _("The whole computation"), subtitle, "")
    if panel == "tokens":
        chart = chips_chart(views["chip_groups"])
        note = _("␣ marks a space; <E4><B8> and the like are the bytes of part of a character.")
        return layout([Drawing("chips", chart, chart.width, chart.height)], _("Tokens"), subtitle, note)
    if panel == "embedding":
        e = views["panel"]
        drawings = [
            Drawing("heatmap", h, h.width, h.height, c, h.name, label)
            for h, c, label in zip(e.maps, e.captions, e.map_labels, strict=True)
        ]
        note = _("the first {dims} of {n} numbers per token; {scale}").format(
            dims=e.dims, n=e.n_embd, scale=e.maps[0].note
        )
        return layout(drawings, _("Embedding"), subtitle, note, ops=["+", "="])
    if panel == "attention":
        a = views["panel"]
        title = _("Attention · block {block} · head {head} · step {n}: {step}").format(
            block=a.layer, head=a.head, n=a.step_number, step=a.steps[a.step_number - 1].title
        )
        drawings = [
            Drawing("heatmap", h, h.width, h.height, t, h.name, label, "main-map")
            for h, t, label in zip(a.maps, a.map_titles, a.map_labels, strict=True)
        ]
        return layout(drawings, title, subtitle, a.maps[0].note)
    if panel == "mlp":
        m = views["panel"]
        d = Drawing(
            "gelu", m.plot, m.plot.width, m.plot.height, m.caption, f"{m.prefix}.mlp.act", m.plot_label
        )
        return layout([d], _("MLP · block {block}").format(block=m.layer), subtitle, "")
    if panel == "residual":
        r = views["panel"]
        g = r.growth
        d = Drawing("growth", g, g.width, g.height, r.caption, "", r.chart_label)
        return layout([d], _("Residual stream"), subtitle, r.note)
    if panel == "output":
        out = views["output"]
        bars = output_chart(out)
        note = _("temperature {t}; {filter}; {kept} tokens kept; drawn with seed {seed}: {token}").format(
            t=out.temperature,
            filter=out.filter_text,
            kept=out.kept_count,
            seed=out.draw_seed,
            token=f"“{out.sampled_label}”",
        )
        d = Drawing("bars", bars, bars.width, bars.height, "", "logits", _("the likeliest next tokens"))
        return layout([d], _("Output: the next token"), subtitle, note)
    if panel == "kv":
        k = views["panel"]
        drawings = [
            Drawing(
                "heatmap",
                part.map,
                part.map.width,
                part.map.height,
                f"{what} · {part.title}",
                part.map.name,
                part.title,
            )
            for what, parts in ((_("keys"), k.drawn.keys), (_("values"), k.drawn.values))
            for part in parts
        ]
        title = _("KV cache · block {block} · head {head}").format(block=k.layer, head=k.head)
        note = _("the first {dims} of {d} numbers per token; {scale}").format(
            dims=k.dims, d=k.head_dim, scale=k.drawn.keys[0].map.note
        )
        return layout(drawings, title, subtitle, note)
    if panel == "weights":
        return weights_figure(views["weights"].drawn, subtitle)
    if panel == "lens":
        lens = lens_chart(views["lens"].steps)
        note = _("temperature 1, no filter")
        d = Drawing(
            "bars", lens, lens.width, lens.height, "", "lens.logits", _("the top guess after each block")
        )
        return layout([d], _("Logit lens: the guess after each block"), subtitle, note)
    if panel == "heads":
        hp = views["panel"]
        title = _("Which heads matter for “{token}”").format(token=hp.token)
        label = _("the change in the top token's probability with each head switched off")
        d = Drawing("heatmap", hp.map, hp.map.width, hp.map.height, "", "", label)
        note = _("each head alone switched off; blue: the probability drops, orange: it rises; {scale}")
        note = note.format(scale=hp.map.note)
        return layout([d], title, subtitle, note)
    raise ValueError(panel)


def weights_figure(w: Any, subtitle: str) -> Figure:
    """The weights behind a panel (app/views/weights.py's Drawn): each matrix's drawn corner, and LayerNorm's
    gamma and β as two rows."""
    drawings = [
        Drawing("heatmap", p.matrix, p.matrix.width, p.matrix.height, p.title, p.matrix.name, p.title)
        for p in w.products
    ]
    drawings += [
        Drawing("heatmap", r.matrix, r.matrix.width, r.matrix.height, r.title, r.matrix.name, r.title)
        for r in w.rows
    ]
    for g in w.gains:
        rows = np.array([[float(sq.value) for sq in v.squares] for v in (g.gamma, g.beta)])
        cols = [str(sq.index) for sq in g.gamma.squares]
        names = ["\u03b3", "\u03b2"]  # gamma, beta
        m = heatmap(g.name, rows, Axes(names, cols, 24, 18), Look(cell=26, numbers=True))
        drawings.append(Drawing("heatmap", m, m.width, m.height, g.title, f"{g.name}.gamma|beta", g.title))
    return layout(
        drawings,
        w.title,
        subtitle,
        _("a corner of each weight; the CSV and JSON exports have the slices whole"),
    )
