"""The MLP panel: LayerNorm -> C -> 4C -> GELU -> 4C -> C, with each token's most active neurons."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.colour import diverging, ink
from app.views.format import MINUS, exact, num, short, show
from app.views.heatmap import Label
from app.views.links import Link, link
from app.views.memo import memo
from app.views.motion import Player, player
from app.views.tokens import selected_index
from app.views.vectors import WorkedLine, vector
from model import Token, Trace

TOP_NEURONS = 5
SHOWN_NEURONS = 4  # the MLP's steps and weights show this many most active neurons, and as many squashed ones
GELU_RANGE = 4.0  # the plot spans -4 … 4 on both axes' input side
BINS = 32


@dataclass(frozen=True)
class Neuron:
    index: int
    pre: str
    act: str
    value: str  # exact activation, for data-value
    fill: str
    ink: str


@dataclass(frozen=True)
class NeuronRow:
    position: int
    label: str
    neurons: list[Neuron]
    active: int  # how many of the 4C neurons are above 0.5 after GELU
    out_norm: str
    selected: bool
    link: Link


@dataclass(frozen=True)
class Plot:
    """GELU's curve, the selected token's pre-activations as a histogram, and its top neurons as dots."""

    width: float
    height: float
    curve: str  # SVG path
    bars: list[tuple[float, float, float, float, str]]  # x, y, w, h, title
    dots: list[tuple[float, float, str]]  # x, y, title
    axes: list[Label]
    zero_x: float
    zero_y: float
    axis_bottom: float
    outside: int  # pre-activations beyond the plotted range


@dataclass(frozen=True)
class Mlp:
    layer: int
    prefix: str  # block{i}, as in the tensor names
    n_embd: int
    hidden: int
    rows: list[NeuronRow]
    plot: Plot
    caption: str
    plot_label: str
    selected_label: str
    blocks: list[tuple[int, Link, bool]]
    player: Player  # the MLP played for the selected token: expand, GELU, project
    lines: list[WorkedLine]


def gelu(x: np.ndarray) -> np.ndarray:
    """GPT-2's GELU (the tanh approximation)."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def shown_neurons(trace: Trace, b: int, i: int) -> list[int]:
    """The neurons whose numbers the MLP's steps and weights show for token i of block b: its most active
    after GELU, then those GELU squashes most (the most negative inputs)."""
    act, pre = trace[f"block{b}.mlp.act"][i], trace[f"block{b}.mlp.pre"][i]  # [4C] each
    top = [int(j) for j in np.argsort(-act, kind="stable")[:SHOWN_NEURONS]]
    low = [int(j) for j in np.argsort(pre, kind="stable")[: 2 * SHOWN_NEURONS] if int(j) not in top]
    return top + low[:SHOWN_NEURONS]


def _plot(pre: np.ndarray, act: np.ndarray, top: np.ndarray) -> Plot:
    w, h, pad = 360.0, 220.0, 28.0
    r = GELU_RANGE

    def sx(x: float) -> float:
        return pad + (x + r) / (2 * r) * (w - 2 * pad)

    def sy(y: float) -> float:  # GELU's output over -0.5 … 4
        return h - pad - (y + 0.5) / (r + 0.5) * (h - 2 * pad)

    xs = np.linspace(-r, r, 81)
    curve = "M" + " L".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, gelu(xs), strict=True))
    counts, edges = np.histogram(pre, bins=BINS, range=(-r, r))
    tallest = max(int(counts.max()), 1)
    bars = []
    for c, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
        bh = (h - 2 * pad) * 0.6 * c / tallest
        bars.append(
            (
                sx(lo),
                h - pad - bh,
                sx(hi) - sx(lo) - 0.5,
                bh,
                _("{n} neurons with pre-activation from {lo} to {hi}").format(
                    n=int(c), lo=num(lo), hi=num(hi)
                ),
            )
        )
    dots = [
        (
            sx(float(np.clip(pre[i], -r, r))),
            sy(float(min(act[i], r))),
            _("neuron {n}: {x} → GELU → {y}").format(n=int(i), x=num(pre[i], 4), y=num(act[i], 4)),
        )
        for i in top
    ]
    axes = [
        Label(sx(-r), h - 8, f"{MINUS}{r:g}", "start"),
        Label(sx(0), h - 8, "0", "middle"),
        Label(sx(r), h - 8, f"{r:g}", "end"),
        Label(sx(-r) + 2, pad - 10, "GELU(x)", "start"),
    ]
    outside = int(((pre < -r) | (pre > r)).sum())
    return Plot(w, h, curve, bars, dots, axes, sx(0), sy(0), h - 22, outside)


def _neurons(trace: Trace, b: int, chosen: int) -> tuple[list[list[Neuron]], list[int], list[str], Plot]:
    """Each token's most active neurons in block b, how many fire, its MLP output length, and the GELU plot of
    the selected token: what the panel shows apart from its links, the same for every student."""
    pre, act = trace[f"block{b}.mlp.pre"], trace[f"block{b}.mlp.act"]
    out = np.linalg.norm(trace[f"block{b}.mlp.out"].astype(np.float64), axis=-1)
    k = min(TOP_NEURONS, act.shape[1])
    tops = np.argsort(-act, axis=1, kind="stable")[:, :k]
    n = act.shape[0]
    scale = float(np.abs(act[np.arange(n)[:, None], tops]).max()) or 1.0
    neurons = []
    for i in range(n):
        row = []
        for j in tops[i]:
            fill = diverging(float(act[i, j]), scale)
            value = act[i, j]
            row.append(Neuron(int(j), num(pre[i, j], 3), num(value, 3), exact(value), fill, ink(fill)))
        neurons.append(row)
    active = [int((act[i] > 0.5).sum()) for i in range(n)]
    plot = _plot(pre[chosen].astype(np.float64), act[chosen].astype(np.float64), tops[chosen])
    return neurons, active, [num(v) for v in out], plot


def _lines(trace: Trace, b: int, i: int) -> list[WorkedLine]:
    """The selected token's MLP as lines that play: its normalised vector, the shown neurons' inputs (expand),
    their GELU outputs, and the first numbers of the MLP's output (project)."""
    p = f"block{b}"
    neurons = shown_neurons(trace, b, i)
    k = len(neurons)
    c = trace.config.n_embd
    dims = min(2 * SHOWN_NEURONS, c)
    pre, act = trace[f"{p}.mlp.pre"][i, neurons], trace[f"{p}.mlp.act"][i, neurons]
    both = float(np.abs(pre).max()) or 1.0  # one colour scale, so GELU's squashing shows
    return [
        WorkedLine(
            "",
            vector(
                f"{p}.ln2",
                trace[f"{p}.ln2"][i, :dims],
                total=c,
                cls="frame f0 slide",
                caption=_("the normalised vector"),
            ),
            "frame f0",
        ),
        WorkedLine(
            f"× W {chr(0x2192)}",  # noqa: RUF001
            vector(
                f"{p}.mlp.pre",
                pre,
                indices=neurons,
                total=4 * c,
                scale=both,
                frames=(1, "drop"),
                caption=_("neuron inputs: the most active and the most negative"),
            ),
            "frame f1",
            _("expand"),
        ),
        WorkedLine(
            "GELU",
            vector(
                f"{p}.mlp.act",
                act,
                indices=neurons,
                total=4 * c,
                scale=both,
                frames=(1 + k, "drop"),
                caption=_("the same neurons after GELU"),
            ),
            f"frame f{1 + k}",
        ),
        WorkedLine(
            f"× W {chr(0x2192)}",  # noqa: RUF001
            vector(
                f"{p}.mlp.out",
                trace[f"{p}.mlp.out"][i, :dims],
                total=c,
                frames=(1 + 2 * k, "drop"),
                caption=_("the MLP's output: back to the stream's width"),
            ),
            f"frame f{1 + 2 * k}",
            _("project"),
        ),
    ]


def mlp_view(trace: Trace, state: State, tok: Callable[[int], Token]) -> Mlp:
    """Top neurons per token in block `state.layer`, and GELU applied to the selected token."""
    cfg = trace.config
    b = state.layer - 1
    n = trace.n_tokens
    chosen = selected_index(state, n)
    neurons, active, out_norm, plot = memo(trace, ("mlp", b, chosen), lambda: _neurons(trace, b, chosen))
    hidden = trace[f"block{b}.mlp.act"].shape[1]
    lines = memo(trace, ("mlp-lines", b, chosen), lambda: _lines(trace, b, chosen))
    rows = [
        NeuronRow(
            position=i + 1,
            label=short(tok(trace.ids[i]).label, 14),
            neurons=neurons[i],
            active=active[i],
            out_norm=out_norm[i],
            selected=i == chosen,
            link=link(state, "panel", token=i + 1),
        )
        for i in range(n)
    ]
    return Mlp(
        layer=state.layer,
        prefix=f"block{b}",
        n_embd=cfg.n_embd,
        hidden=hidden,
        rows=rows,
        plot=plot,
        caption=_("GELU for {tok}: the curve, a histogram of its {n} inputs, and its top neurons").format(
            tok=f"“{show(tok(trace.ids[chosen]).label)}”", n=hidden
        ),
        plot_label=_("GELU curve with the selected token's neuron inputs"),
        selected_label=show(tok(trace.ids[chosen]).label),
        blocks=[(i + 1, link(state, "panel", layer=i + 1), i == b) for i in range(cfg.n_layer)],
        player=player(
            "mlp-steps",
            _("the MLP of {tok}").format(tok=f"“{show(tok(trace.ids[chosen]).label)}”"),
            1 + 2 * len(lines[1].vector.squares) + len(lines[3].vector.squares),
        ),
        lines=lines,
    )
