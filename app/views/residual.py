"""The residual stream and LayerNorm panel: what each LayerNorm sees, and how the stream grows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.colour import SELECTED, STREAM
from app.views.format import MINUS, TIMES, exact, num, short, show
from app.views.heatmap import Label
from app.views.links import Link, link
from app.views.memo import memo
from app.views.motion import Player, player
from app.views.tokens import selected_index
from app.views.vectors import WorkedLine, played_dims, vector
from model import Token, Trace


@dataclass(frozen=True)
class Stat:
    position: int
    label: str
    mean: str
    std: str
    mean_value: str  # exact, for data-*
    std_value: str
    selected: bool
    link: Link


@dataclass(frozen=True)
class LayerNormStats:
    name: str  # block3.ln1, block3.ln2, final.ln
    title: str
    reads: str  # the tensor it normalises
    stats: list[Stat]


@dataclass(frozen=True)
class Line:
    points: str  # SVG polyline points
    title: str
    selected: bool
    stroke: str
    width: float


@dataclass(frozen=True)
class Growth:
    """Length of every token's residual vector after each step, as a line chart."""

    width: float
    height: float
    lines: list[Line]
    ticks: list[Label]  # x axis: the stages
    y_ticks: list[Label]
    grid: list[float]  # y of the horizontal grid lines
    log: bool
    left: float
    right: float
    marker: float | None  # x of the selected block's output
    marker_bottom: float


@dataclass(frozen=True)
class Residual:
    layer: int
    n_embd: int
    norms: list[LayerNormStats]
    growth: Growth
    caption: str
    chart_label: str
    note: str
    table_columns: list[str]
    table_rows: list[tuple[str, list[str], bool]]
    selected_label: str
    epsilon: str
    player: Player  # LayerNorm played for the selected token: centre, scale, gain and bias
    lines: list[WorkedLine]
    ln_name: str  # the LayerNorm it plays (block{i}.ln1)


def stages(n_layer: int) -> list[tuple[str, str]]:
    """(trace name, short label) of the residual stream after every step, in order."""
    out = [("embed.sum", "emb")]
    for i in range(n_layer):
        out += [(f"block{i}.resid.mid", ""), (f"block{i}.resid.out", str(i + 1))]
    return out


def _growth(norms: np.ndarray, labels: list[str], chosen: int, layer: int) -> Growth:
    """norms: [stages, T]."""
    w, h, left, right, top, bottom = 640.0, 240.0, 52.0, 12.0, 12.0, 28.0
    s, n = norms.shape
    lo, hi = float(norms.min()), float(norms.max())
    log = lo > 0 and hi / lo > 30
    if log:
        lo_t, hi_t = np.floor(np.log10(lo)), np.ceil(np.log10(hi))
        ticks = [10.0**e for e in np.arange(lo_t, hi_t + 1)]

        def f(v: float) -> float:
            return float(np.log10(v))

        lo_v, hi_v = lo_t, hi_t
    else:
        step = 10 ** np.floor(np.log10(hi / 4)) if hi > 0 else 1.0
        top_v = float(np.ceil(hi / step) * step) or 1.0
        ticks = [float(v) for v in np.linspace(0, top_v, 5)]

        def f(v: float) -> float:
            return v

        lo_v, hi_v = 0.0, top_v

    def sx(k: int) -> float:
        return left + k * (w - left - right) / max(s - 1, 1)

    def sy(v: float) -> float:
        return top + (1 - (f(v) - lo_v) / ((hi_v - lo_v) or 1)) * (h - top - bottom)

    lines = []
    for i in range(n):
        pts = " ".join(f"{sx(k):.1f},{sy(max(float(norms[k, i]), 1e-30)):.1f}" for k in range(s))
        sel = i == chosen
        lines.append(
            Line(
                pts,
                _("{tok}: length {a} after the embedding, {b} after the last block").format(
                    tok=f"“{labels[i]}”", a=num(norms[0, i]), b=num(norms[-1, i])
                ),
                sel,
                SELECTED if sel else STREAM,
                3.0 if sel else 1.5,
            )
        )
    lines.sort(key=lambda line: line.selected)  # the selected token is drawn last, on top
    x_ticks = [Label(sx(0), h - 10, _("emb"), "middle")]
    every = max(1, (s - 1) // 2 // 12)
    x_ticks += [
        Label(sx(2 * b + 2), h - 10, str(b + 1), "middle")
        for b in range((s - 1) // 2)
        if (b + 1) % every == 0
    ]
    y_ticks = [Label(left - 6, sy(v), num(v), "end") for v in ticks]
    grid = [sy(v) for v in ticks]
    return Growth(w, h, lines, x_ticks, y_ticks, grid, log, left, w - right, sx(2 * layer), h - 24)


DIMS = 16  # numbers of a vector the played LayerNorm shows


def _lines(trace: Trace, ln: str, reads: str, i: int, present: bool) -> list[WorkedLine]:
    """LayerNorm `ln` on token i, its first DIMS numbers: the stream it reads, minus the mean (centre),
    divided by the standard deviation (scale), then its output, which the learned gain and bias made."""
    cfg = trace.config
    c = cfg.n_embd
    x = trace[reads][i].astype(np.float64)  # [C]
    mean, std = float(x.mean()), float(np.sqrt(x.var() + cfg.layer_norm_epsilon))
    dims = played_dims(min(DIMS, c), present)
    centred = x - mean
    line = [
        vector(reads, x[:dims], total=c, cls="frame f0 slide", caption=_("the stream it reads")),
        vector(
            f"{reads} {MINUS} mean",
            centred[:dims],
            total=c,
            cls="frame f1 slide",
            caption=_("centred: the mean subtracted"),
        ),
        vector(
            "(…) ÷ std",
            centred[:dims] / std,
            total=c,
            cls="frame f2 slide",
            caption=_("scaled: divided by the standard deviation"),
        ),
        vector(
            ln,
            trace[ln][i, :dims],
            total=c,
            cls="frame f3 slide",
            caption=_("its output: times the learned gain γ, plus the learned bias β"),  # noqa: RUF001
        ),
    ]
    return [
        WorkedLine("", line[0], "frame f0"),
        WorkedLine(f"{MINUS} {_paren(mean)}", line[1], "frame f1", _("mean")),
        WorkedLine(f"÷ {num(std, 3)}", line[2], "frame f2", _("std")),
        WorkedLine(f"{TIMES} \u03b3 + \u03b2", line[3], "frame f3"),  # times gamma plus beta
    ]


def _paren(x: float) -> str:
    """A number after an operator: a negative one in parentheses."""
    text = num(x, 3)
    return f"({text})" if text.startswith(MINUS) else text


def residual_view(trace: Trace, state: State, tok: Callable[[int], Token]) -> Residual:
    """LayerNorm statistics around block `state.layer`, and residual growth over all blocks."""
    cfg = trace.config
    b = state.layer - 1
    n = trace.n_tokens
    chosen = selected_index(state, n)
    labels = [short(tok(i).label, 12) for i in trace.ids]
    read = {
        f"block{b}.ln1": "embed.sum" if b == 0 else f"block{b - 1}.resid.out",
        f"block{b}.ln2": f"block{b}.resid.mid",
        "final.ln": f"block{cfg.n_layer - 1}.resid.out",
    }
    titles = {
        f"block{b}.ln1": _("before attention in block {n}").format(n=state.layer),
        f"block{b}.ln2": _("before the MLP in block {n}").format(n=state.layer),
        "final.ln": _("final, before unembedding"),
    }
    norms_ln = []
    for name in read:
        mean, std = trace.ln_stats(name)
        stats = [
            Stat(
                i + 1,
                labels[i],
                num(mean[i], 4),
                num(std[i], 4),
                exact(mean[i]),
                exact(std[i]),
                i == chosen,
                link(state, "panel", token=i + 1),
            )
            for i in range(n)
        ]
        norms_ln.append(LayerNormStats(name, titles[name], read[name], stats))
    ln1 = f"block{b}.ln1"
    present = state.present
    lines = memo(
        trace, ("ln-lines", b, chosen, present), lambda: _lines(trace, ln1, read[ln1], chosen, present)
    )
    names = stages(cfg.n_layer)
    norms = memo(
        trace,
        ("residual-norms",),
        lambda: np.stack([np.linalg.norm(trace[name].astype(np.float64), axis=-1) for name, _ in names]),
    )  # [S, T]
    columns = [_("emb")] + [f"{i + 1}" for i in range(cfg.n_layer)]
    growth = memo(trace, ("residual-growth", chosen, b), lambda: _growth(norms, labels, chosen, b))
    rows = [
        (labels[i], [num(norms[0, i])] + [num(norms[2 * k + 2, i]) for k in range(cfg.n_layer)], i == chosen)
        for i in range(n)
    ]
    return Residual(
        layer=state.layer,
        n_embd=cfg.n_embd,
        norms=norms_ln,
        growth=growth,
        caption=_("Length of each token's vector after the embedding and after every block")
        + (_(" (log scale)") if growth.log else ""),
        chart_label=_("residual stream length per block"),
        note=_(
            "The blue line is {tok}; the dashed line marks block {n}. "
            "x: after the embedding, then after block 1, 2, …."
        ).format(tok=f"“{show(tok(trace.ids[chosen]).label)}”", n=state.layer),
        table_columns=columns,
        table_rows=rows,
        selected_label=show(tok(trace.ids[chosen]).label),
        epsilon=num(cfg.layer_norm_epsilon),
        player=player(
            "ln-steps",
            _("LayerNorm {name} on {tok}").format(name=ln1, tok=f"“{show(tok(trace.ids[chosen]).label)}”"),
            len(lines),
        ),
        lines=lines,
        ln_name=ln1,
    )
