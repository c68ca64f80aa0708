"""Heatmaps: a matrix drawn as coloured squares, with row and column labels, a colour legend, and cards that
pin a square's exact value.

`heatmap(name, matrix, axes, look, marks)` reads as its three small specs say: `Axes` (the labels and the room
they take), `Look` (how the squares are drawn: size, colour scale, numbers, titles, pins, motion) and `Marks`
(what is outlined). The squares are kept in one form, `Squares`: one list per attribute, since a page may hold
thousands; app/views/markup.py writes them as SVG in one pass. Past COMPACT_CELLS squares the picture is one
path per colour level instead (`paths`: no square to point at, so no value, title or pin).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.views import markup
from app.views.colour import DIVERGING, LEVELS, SEQUENTIAL, Color, mix_many, palette
from app.views.format import num
from app.views.motion import frame_class

COMPACT_CELLS = 48 * 48
PIN_CELLS = 2048  # past this many squares a heatmap pins nothing (the numbers table has them all)
LEGEND_H = 30.0  # room under the squares for the colour legend
LEGEND_STEPS = 24


@dataclass(frozen=True)
class Axes:
    """The matrix's row and column labels, the room they take, and the words a square's title starts with
    (`describe`, e.g. "query {row}, key {col}: ")."""

    rows: Sequence[str]
    cols: Sequence[str]
    left: float = 0  # room for row labels (none drawn when 0)
    top: float = 0  # room for column labels (none drawn when 0)
    rotate: bool = False  # column labels of square matrices are written at an angle
    describe: str = ""


@dataclass(frozen=True)
class Motion:
    """How the squares appear when the figure plays (app/views/motion.py): by row or by column, with a kind of
    motion from static/motion.css ("" reveal, "shrink", "hide", ...), counting frames from `first`."""

    by: str = "row"  # row | col
    kind: str = ""
    first: int = 0


@dataclass(frozen=True)
class Look:
    """How the squares are drawn. `scale` is the colour scale's end (default: the largest |value| when
    signed, 1 otherwise); `compact` defaults to more than COMPACT_CELLS squares; `pin` is what a pinned card
    calls square (row, col), e.g. "block0.attn.probs[2, {row}, {col}]" (default: the name, the leading
    `index` and the square's)."""

    cell: float = 22
    signed: bool = True
    scale: float | None = None
    numbers: bool = False
    titles: bool = True
    pins: bool = True
    legend: bool = True
    compact: bool | None = None
    index: tuple[int, ...] = ()  # where this 2-D slice sits in its tensor, e.g. (head,)
    pin: str = ""
    motion: Motion | None = None


@dataclass(frozen=True)
class Marks:
    """What is outlined: the selected row and column, and one square the guided tour talks about."""

    row: int | None = None
    col: int | None = None
    square: tuple[int, int] | None = None


class Squares(NamedTuple):
    """A heatmap's squares, one list per attribute (the one form they are kept in)."""

    xs: list[float]  # left edge of each column
    ys: list[float]  # top edge of each row
    size: float
    rows: list[int]
    cols: list[int]
    fills: list[str]
    values: list[str]  # exact, for data-value
    titles: list[str]  # shown on hover; "" when titles are off
    texts: list[str]  # printed inside when numbers are on
    inks: list[str]  # black or white, whichever reads on the fill
    classes: list[str]  # motion classes ("" when the figure does not play)
    pins: list[str]  # the id of each square's pinned card ("" when it has none)


@dataclass(frozen=True)
class Label:
    """A piece of SVG text placed by a view."""

    x: float
    y: float
    text: str
    anchor: str = "end"  # start | middle | end
    selected: bool = False
    rotate: bool = False  # column labels of square matrices are written at an angle
    cls: str = ""  # a class for the stylesheet (e.g. "long" and "short": the desk's and the projector's)


@dataclass(frozen=True)
class Outline:
    """A rectangle drawn around squares: the selected row or column ("row-mark"), the tour's square
    ("tour-mark"); `cls` may add motion classes."""

    cls: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Legend:
    """The colour scale under a heatmap: a bar of LEGEND_STEPS colours from `low` to `high`."""

    y: float
    h: float
    step: float  # width of one colour
    stops: list[tuple[float, str]]  # (x, fill) of each colour, low to high
    low: Label
    high: Label


@dataclass(frozen=True)
class Pin:
    """A pinned card: a square's exact value, the tensor entry it is, and the words of its title."""

    id: str
    entry: str  # e.g. block0.attn.probs[2, 3, 1]
    value: str
    words: str


@dataclass(frozen=True)
class Heatmap:
    """A matrix drawn as coloured squares, with row and column labels."""

    name: str  # the Trace name it shows, e.g. block3.attn.probs
    rows: int
    cols: int
    cell: float
    width: float
    height: float
    left: float
    top: float
    squares: Squares
    markup: str  # the squares as SVG (titles escaped: they hold token text a user typed)
    paths: list[tuple[str, str]] | None  # compact drawing: (fill, path) per colour level, no squares
    labels: list[Label]
    outlines: list[Outline]
    legend: Legend | None
    note: str  # the colour scale in words, or what is shown
    pins: list[Pin] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # drawn over the squares while the figure plays

    @property
    def svg_cells(self) -> Markup:
        """The squares as SVG markup (app/views/markup.py: a template loop over thousands of squares is the
        slowest part of a page)."""
        return markup.heatmap_cells(self.markup, self.paths)

    @property
    def svg_layers(self) -> Markup:
        return Markup("".join(self.layers))

    @property
    def pin_cards(self) -> Markup:
        """The pinned cards, hidden until their square is clicked (`:target`; written once per heatmap)."""
        return markup.pin_cards(self.pins) if self.pins else Markup("")


def heatmap(
    name: str, matrix: np.ndarray, axes: Axes, look: Look = Look(), marks: Marks = Marks(), note: str = ""
) -> Heatmap:
    """Colour every finite entry of a 2-D matrix; -inf (the causal mask) stays blank."""
    m = np.asarray(matrix, dtype=np.float64)
    n_rows, n_cols = m.shape
    scale = _scale(m, look)
    t = _positions(m, scale, look.signed)
    compact = m.size > COMPACT_CELLS if look.compact is None else look.compact
    squares = _squares(name, m, t, axes, look, compact)
    top, left, cell = axes.top, axes.left, look.cell
    width = left + n_cols * cell + 2
    height = top + n_rows * cell + 2
    legend = colour_legend(look.signed, scale, left, height + 4, n_cols * cell) if look.legend else None
    if legend is not None:
        width = max(width, legend.high.x + 2)
        height += LEGEND_H
    pins = _pins(squares, axes, look) if squares.pins and squares.pins[0] else []
    return Heatmap(
        name=name,
        rows=n_rows,
        cols=n_cols,
        cell=cell,
        width=width,
        height=height,
        left=left,
        top=top,
        squares=squares,
        # written now, once: a heatmap is kept with its trace (app/views/memo.py) and drawn by many pages
        markup="" if compact else markup.squares(squares, titles=look.titles, numbers=look.numbers),
        paths=_level_paths(m, t, DIVERGING if look.signed else SEQUENTIAL, cell, left, top)
        if compact
        else None,
        labels=_labels(axes, cell, marks.row),
        outlines=_outlines(marks, cell, left, top, n_rows, n_cols),
        legend=legend,
        note=note or _scale_words(scale, look.signed),
        pins=pins,
    )


def _scale(m: np.ndarray, look: Look) -> float:
    if look.scale is not None:
        return look.scale
    finite = m[np.isfinite(m)]
    return float(np.abs(finite).max()) if look.signed and finite.size else 1.0


def _positions(m: np.ndarray, scale: float, signed: bool) -> np.ndarray:
    """Where each value falls on its colour scale, 0..1, as `diverging` and `sequential` place one value (a
    value far past a tiny scale overflows to ±inf: clipped to the end of the scale, as `_mix` does)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if signed:
            return (
                np.where(np.isfinite(m), 0.5 + 0.5 * m / scale, 0.5) if scale > 0 else np.full(m.shape, 0.5)
            )
        return np.where(np.isfinite(m), m / scale, 0.0) if scale > 0 else np.zeros(m.shape)


def _squares(name: str, m: np.ndarray, t: np.ndarray, axes: Axes, look: Look, compact: bool) -> Squares:
    """Every finite square's place, colour, exact value, title, number, motion class and pin id."""
    n_rows, n_cols = m.shape
    cell = look.cell
    flat = m.reshape(-1)
    keep = np.flatnonzero(flat != -np.inf) if not compact else np.zeros(0, np.int64)  # -inf: never drawn
    rs, cs = (k.tolist() for k in np.divmod(keep, n_cols))
    values = flat[keep].tolist()
    fills, inks = (
        mix_many(DIVERGING if look.signed else SEQUENTIAL, t.reshape(-1)[keep]) if values else ([], [])
    )
    count = len(values)
    if look.titles and axes.describe:
        say = axes.describe.format
        titles = [
            say(row=axes.rows[r], col=axes.cols[c]) + num(v, 4)
            for r, c, v in zip(rs, cs, values, strict=True)
        ]
    else:
        titles = [num(v, 4) for v in values] if look.titles else [""] * count
    mo = look.motion
    if mo is None:
        classes = [""] * count
    else:
        along, total = (rs, n_rows) if mo.by == "row" else (cs, n_cols)
        by_line = [frame_class(k, total, mo.first, mo.kind) for k in range(total)]
        classes = [by_line[k] for k in along]
    pinned = look.pins and look.titles and 0 < count <= PIN_CELLS
    if pinned:
        where = "".join(f"{i}-" for i in look.index)
        ids = [f"v-{name}-{where}{r}-{c}" for r, c in zip(rs, cs, strict=True)]
    else:
        ids = [""] * count
    return Squares(
        xs=[axes.left + c * cell for c in range(n_cols)],
        ys=[axes.top + r * cell for r in range(n_rows)],
        size=cell,
        rows=rs,
        cols=cs,
        fills=fills,
        values=[f"{v:.9g}" for v in values],  # exact(v) for every value but -inf
        titles=titles,
        texts=[num(v, 2) for v in values] if look.numbers else [""] * count,
        inks=inks,
        classes=classes,
        pins=ids,
    )


def _pins(s: Squares, axes: Axes, look: Look) -> list[Pin]:
    """The card of every square: what it is (`look.pin`, else the tensor entry indexed as in numpy, e.g.
    block0.attn.probs[2, 3, 1]), its exact value and the words of its title."""
    if look.pin:
        entry = look.pin.format
        entries = [entry(row=r, col=c) for r, c in zip(s.rows, s.cols, strict=True)]
    else:
        entries = [_entry(i) for i in s.pins]
    say = axes.describe.format
    words = [
        say(row=axes.rows[r], col=axes.cols[c]).rstrip(" :\uff1a")
        for r, c in zip(s.rows, s.cols, strict=True)
    ]
    return [Pin(*card) for card in zip(s.pins, entries, s.values, words, strict=True)]


def _entry(pin_id: str) -> str:
    """ "v-block0.attn.probs-2-3-1" -> "block0.attn.probs[2, 3, 1]"."""
    name, *index = pin_id.removeprefix("v-").split("-")
    return f"{name}[{', '.join(index)}]"


def _labels(axes: Axes, cell: float, selected_row: int | None) -> list[Label]:
    left, top = axes.left, axes.top
    labels = [
        Label(left - 4, top + (r + 0.5) * cell, text, "end", r == selected_row)
        for r, text in enumerate(axes.rows)
        if left > 0
    ]
    rotate = axes.rotate
    labels += [
        Label(left + (c + 0.5) * cell, top - 5, text, "start" if rotate else "middle", rotate=rotate)
        for c, text in enumerate(axes.cols)
        if top > 0
    ]
    return labels


def _outlines(marks: Marks, cell: float, left: float, top: float, rows: int, cols: int) -> list[Outline]:
    out = []
    if marks.row is not None:
        out.append(Outline("row-mark", left - 1, top + marks.row * cell - 1, cols * cell + 2, cell + 2))
    if marks.col is not None:
        out.append(Outline("row-mark", left + marks.col * cell - 1, top - 1, cell + 2, rows * cell + 2))
    if marks.square is not None:
        r, c = marks.square
        out.append(Outline("tour-mark", left + c * cell - 1, top + r * cell - 1, cell + 2, cell + 2))
    return out


def colour_legend(signed: bool, scale: float, x: float, y: float, room: float) -> Legend:
    """A bar from the low end of the colour scale to the high end (-scale or 0 to scale), each end labelled
    with its value; as wide as `room`, between 96 and 200."""
    low = -scale if signed else 0.0
    width = max(96.0, min(room, 200.0))
    step = width / LEGEND_STEPS
    fills = mix_many(DIVERGING if signed else SEQUENTIAL, np.linspace(0.0, 1.0, LEGEND_STEPS))[0]
    text_y = y + 8 + 10
    return Legend(
        y=y,
        h=8,
        step=round(step + 0.3, 2),  # a hair wider: no seams between the colours
        stops=[(round(x + k * step, 2), f) for k, f in enumerate(fills)],
        low=Label(x, text_y, num(low), "start"),
        high=Label(x + width, text_y, num(scale), "end"),
    )


def _scale_words(scale: float, signed: bool) -> str:
    if signed:
        return _("colour scale ±{scale}").format(scale=num(scale))
    return _("colour scale 0 to {top}").format(top=num(scale))


def _level_paths(
    m: np.ndarray, t: np.ndarray, stops: Sequence[Color], cell: float, left: float, top: float
) -> list[tuple[str, str]]:
    """One SVG path per colour level, each a run of unit squares: the same picture as one rect per cell with
    the colour rounded to one of LEVELS steps. Blank (-inf) entries are left out."""
    level = np.rint(np.clip(t, 0.0, 1.0) * (LEVELS - 1)).astype(np.int64).reshape(-1)
    level[~np.isfinite(m.reshape(-1))] = -1
    fills = palette(stops)
    c = f"{cell:g}"
    xs = [f"{left + x * cell:g}" for x in range(m.shape[1])]
    ys = [f"{top + y * cell:g}" for y in range(m.shape[0])]
    keep = np.flatnonzero(level >= 0)
    order = keep[np.argsort(level[keep], kind="stable")]  # by level, each level's squares row by row
    levels = level[order]
    rows, cols = np.divmod(order, m.shape[1])
    squares = [f"M{xs[x]} {ys[y]}h{c}v{c}h-{c}z" for y, x in zip(rows.tolist(), cols.tolist(), strict=True)]
    starts = [0, *(np.flatnonzero(np.diff(levels)) + 1).tolist()]
    ends = [*starts[1:], len(squares)]
    return [
        (fills[int(levels[a])], "".join(squares[a:b])) for a, b in zip(starts, ends, strict=True) if a < b
    ]


def pool_max(m: np.ndarray, bins: int) -> np.ndarray:
    """A [R, C] matrix shrunk to at most bins x bins by taking the largest entry of each block."""
    for axis in (0, 1):
        n = m.shape[axis]
        if n > bins:
            edges = np.linspace(0, n, bins + 1).astype(np.int64)[:-1]
            m = np.maximum.reduceat(m, edges, axis=axis)
    return m
