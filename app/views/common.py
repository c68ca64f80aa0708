"""Shared pieces of the views: colour scales, number formats, token labels and heatmap cells.

Colours are computed here so templates only print them. Signed values use a blue-white-orange diverging
scale, probabilities a light-to-dark yellow-green-blue sequential one; both stay distinguishable for the
common kinds of colour blindness.
"""

from __future__ import annotations

import functools
import math
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from html import escape
from typing import NamedTuple, TypeVar

import numpy as np
from markupsafe import Markup

from app import i18n
from app.i18n import _
from model import Trace

Color = tuple[int, int, int]

DIVERGING: tuple[Color, ...] = (
    (33, 82, 156),
    (125, 166, 214),
    (246, 246, 242),
    (238, 170, 108),
    (166, 78, 12),
)
SEQUENTIAL: tuple[Color, ...] = (
    (250, 250, 225),
    (200, 232, 180),
    (88, 182, 192),
    (36, 100, 166),
    (16, 40, 110),
)
SELECTED = "#0072b2"  # the selected token's stream and marks
SAMPLED = "#d55e00"  # the token the draw picked
STREAM = "#c5cbd3"
MINUS, TIMES = "\u2212", "\u00d7"  # typographic minus and times for people


def _mix(stops: Sequence[Color], t: float) -> str:
    """Linear interpolation along colour stops, t in [0, 1] -> '#rrggbb'."""
    t = min(max(float(t), 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    f = t - i
    a, b = stops[i], stops[i + 1]
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


_HEX_ARRAY = np.array([f"{i:02x}" for i in range(256)])
_HASH_HEX = np.char.add("#", _HEX_ARRAY)  # '#00' … '#ff': a colour's first two digits


def _mix_many(stops: Sequence[Color], t: np.ndarray) -> tuple[list[str], list[str]]:
    """`_mix` and `ink` for many t at once: the same arithmetic in numpy, so the same colours, faster."""
    t = np.clip(t, 0.0, 1.0) * (len(stops) - 1)
    i = np.minimum(t.astype(np.int64), len(stops) - 2)
    colours = np.asarray(stops, dtype=np.float64)
    a, b = colours[i], colours[i + 1]  # [N, 3] each
    rgb = np.round(a + (b - a) * (t - i)[:, None]).astype(np.int64)  # [N, 3]
    r, g, bl = rgb.T / 255
    light = (0.2126 * r + 0.7152 * g + 0.0722 * bl > 0.5).tolist()
    fills = np.char.add(
        np.char.add(_HASH_HEX[rgb[:, 0]], _HEX_ARRAY[rgb[:, 1]]), _HEX_ARRAY[rgb[:, 2]]
    ).tolist()
    return fills, ["#111111" if on else "#ffffff" for on in light]


def diverging(value: float, scale: float) -> str:
    """Colour of a signed value; ±scale reach the ends of the scale."""
    if scale <= 0 or not np.isfinite(value):
        return _mix(DIVERGING, 0.5)
    return _mix(DIVERGING, 0.5 + 0.5 * value / scale)


def sequential(value: float, top: float = 1.0) -> str:
    """Colour of a value in [0, top], e.g. a probability."""
    if top <= 0 or not np.isfinite(value):
        return _mix(SEQUENTIAL, 0.0)
    return _mix(SEQUENTIAL, value / top)


def ink(fill: str) -> str:
    """Black or white text, whichever reads better on `fill`."""
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#ffffff"


def num(x: float, digits: int = 3) -> str:
    """A number for people: 3 significant digits, a real minus sign, minus infinity for the mask."""
    x = float(x)
    if not math.isfinite(x):  # math, not numpy: thousands of calls on a page
        return _("not a number") if math.isnan(x) else (f"{MINUS}∞" if x < 0 else "∞")
    text = f"{x:.{digits}g}"
    if "e" in text:
        mantissa, exp = text.split("e")
        text = f"{mantissa}{TIMES}10{str(int(exp)).translate(_SUPERSCRIPT)}"
    return text.replace("-", MINUS)


def exact(x: float) -> str:
    """A number for machines (data-* attributes): float32 precision, '-inf' for the mask."""
    x = float(x)
    return "-inf" if x == -math.inf else f"{x:.9g}"


def percent(p: float) -> str:
    """A probability as a percentage with sensible precision."""
    p = float(p) * 100
    if p >= 10:
        return f"{p:.1f}%"
    if p >= 0.1:
        return f"{p:.2f}%"
    if p == 0:
        return "0%"
    return f"{p:.2g}%".replace("e-0", "e-")


_SUPERSCRIPT = str.maketrans(
    "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
)
T = TypeVar("T")
MEMO_TOKENS = 32  # texts up to this long keep their drawn pictures with their trace
MEMO_ENTRIES = 64  # at most this many pictures per trace, the oldest dropped first
_memo_lock = threading.Lock()


def memo(trace: Trace, key: tuple[object, ...], build: Callable[[], T]) -> T:
    """`build()` once per trace, language and key, then kept with the trace (in its cache, shared by every
    student who opens the same text). Only for what depends on the numbers, the key and the language: links
    carry each student's own controls, so what holds links is drawn with the sampling controls left as a
    mark (app/routes/pages.py). Long texts are not kept (their pictures are big), and a trace keeps at
    most MEMO_ENTRIES pictures, the least recently used dropped first, so clicking through every head of
    every block cannot grow it without bound."""
    if trace.n_tokens > MEMO_TOKENS:
        return build()
    kept: OrderedDict[tuple[object, ...], object]
    kept = trace.derived.setdefault("views", OrderedDict())  # type: ignore[assignment]
    full = (i18n.current(), *key)
    found = kept.get(full)
    if found is None:
        found = build()
        with _memo_lock:
            kept[full] = found
            while len(kept) > MEMO_ENTRIES:
                kept.popitem(last=False)  # the least recently used
    else:
        with _memo_lock:
            if full in kept:
                kept.move_to_end(full)
    return found  # type: ignore[return-value]


_VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"}


def show(label: str) -> str:
    """A token label with its whitespace and control characters made visible."""
    out = []
    for ch in label:
        if ch in _VISIBLE:
            out.append(_VISIBLE[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(f"U+{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def short(label: str, n: int = 14) -> str:
    """A visible label cut to n characters."""
    text = show(label)
    return text if len(text) <= n else text[: n - 1] + "…"


class Cell(NamedTuple):
    """One heatmap square, in the SVG's user units (a tuple: a page makes thousands)."""

    x: float
    y: float
    size: float
    fill: str
    value: str  # exact, for data-value
    title: str  # shown on hover / focus
    text: str = ""  # printed inside when the cell is big enough
    ink: str = "#111111"

    @property
    def cx(self) -> float:
        return self.x + self.size / 2

    @property
    def cy(self) -> float:
        return self.y + self.size / 2


class _Cells(NamedTuple):
    """A heatmap's squares as columns, one list per attribute; `Heatmap.cells` makes the Cells when asked."""

    xs: list[float]
    ys: list[float]
    size: float
    rows: list[int]
    cols: list[int]
    fills: list[str]
    values: list[str]
    titles: list[str]
    texts: list[str]
    inks: list[str]

    def build(self) -> list[Cell]:
        xs, ys, size = self.xs, self.ys, self.size
        return [
            Cell(xs[c], ys[r], size, f, v, t, x, i)
            for r, c, f, v, t, x, i in zip(
                self.rows, self.cols, self.fills, self.values, self.titles, self.texts, self.inks, strict=True
            )
        ]


@dataclass(frozen=True)
class Label:
    """A piece of SVG text placed by a view."""

    x: float
    y: float
    text: str
    anchor: str = "end"  # start | middle | end
    selected: bool = False
    rotate: bool = False  # column labels of square matrices are written at an angle


@dataclass(frozen=True)
class Heatmap:
    """A matrix drawn as coloured squares, with row and column labels."""

    name: str  # the Trace name it shows, e.g. block3.attn.probs
    rows: int
    cols: int
    cell: float
    width: float
    height: float
    left: float  # room for row labels
    top: float  # room for column labels
    parts: _Cells  # the squares, one list per attribute (see `cells`)
    labels: list[Label]
    selected_row: int | None
    note: str  # e.g. the colour scale or which columns are shown
    highlight: tuple[float, float, float, float] | None  # x, y, width, height around the selected row
    col_highlight: tuple[float, float, float, float] | None = None  # around the selected column
    mark: tuple[float, float, float, float] | None = None  # around one cell the guided tour talks about
    paths: list[tuple[str, str]] | None = None  # compact drawing: (fill, path) per colour level, no cells

    squares: str = ""  # the cells as SVG markup, titles escaped (they hold token text a user typed)

    @cached_property
    def cells(self) -> list[Cell]:
        """Every drawn square (none when compact), made on demand: pages need only `squares`."""
        return self.parts.build()

    @property
    def svg_cells(self) -> Markup:
        """The squares as SVG markup (written by `heatmap` in one pass: a template loop over thousands of
        cells is the slowest part of a page)."""
        if self.paths is not None:
            return Markup("".join(f'<path fill="{fill}" d="{d}"/>' for fill, d in self.paths))
        return Markup(self.squares)


def heatmap(
    name: str,
    matrix: np.ndarray,
    *,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    signed: bool = True,
    cell: float = 22,
    numbers: bool = False,
    selected_row: int | None = None,
    left: float = 0,
    top: float = 0,
    note: str = "",
    describe: str = "",
    scale: float | None = None,
    rotate: bool = False,
    titles: bool = True,
    selected_col: int | None = None,
    mark: tuple[int, int] | None = None,
    compact: bool | None = None,
) -> Heatmap:
    """Colour every finite entry of a 2-D matrix; -inf (the causal mask) stays blank.

    `compact` (by default: more than COMPACT_CELLS squares) draws the squares as one path per colour level,
    about a sixth of the bytes, with no per-square value or title: at that size they are too small to point
    at, and the numbers are in the table and the exports."""
    m = np.asarray(matrix, dtype=np.float64)
    finite = m[np.isfinite(m)]
    if scale is None:
        scale = float(np.abs(finite).max()) if signed and finite.size else 1.0
    # where each colour falls on its scale, as `diverging` and `sequential` place one value (a value far
    # past a tiny scale overflows to ±inf: clipped to the end of the scale, as `_mix` does)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if signed:
            t = np.where(np.isfinite(m), 0.5 + 0.5 * m / scale, 0.5) if scale > 0 else np.full(m.shape, 0.5)
        else:
            t = np.where(np.isfinite(m), m / scale, 0.0) if scale > 0 else np.zeros(m.shape)
    cols = m.shape[1]
    stops = DIVERGING if signed else SEQUENTIAL
    if compact is None:
        compact = m.size > COMPACT_CELLS
    paths = _level_paths(m, t, stops, cell, left, top) if compact else None
    # the squares' markup is written here, one list per attribute (a page may hold thousands of squares)
    flat = m.reshape(-1)
    keep = np.flatnonzero(flat != -np.inf) if not compact else np.zeros(0, np.int64)  # -inf: never drawn
    rs, cs = (k.tolist() for k in np.divmod(keep, cols))
    values = flat[keep].tolist()
    fills, inks = _mix_many(stops, t.reshape(-1)[keep]) if values else ([], [])
    xs = [left + c * cell for c in range(cols)]
    ys = [top + r * cell for r in range(m.shape[0])]
    exacts = [f"{v:.9g}" for v in values]  # exact(v) for every value but -inf
    if titles and describe:
        fmt = describe.format
        cells_at = zip(rs, cs, values, strict=True)
        titled = [fmt(row=row_labels[r], col=col_labels[c]) + num(v, 4) for r, c, v in cells_at]
    else:
        titled = [num(v, 4) for v in values] if titles else [""] * len(values)
    texts = [num(v, 2) for v in values] if numbers else [""] * len(values)
    sx, sy, size = [str(x) for x in xs], [str(y) for y in ys], str(cell)
    ends = [f"<title>{escape(h)}</title></rect>" for h in titled] if titles else ["</rect>"] * len(values)
    svg = [
        f'<rect x="{sx[c]}" y="{sy[r]}" width="{size}" height="{size}" fill="{f}" data-value="{v}">{e}'
        for r, c, f, v, e in zip(rs, cs, fills, exacts, ends, strict=True)
    ]
    if numbers:
        half = cell / 2
        svg = [
            square + (f'<text class="num" x="{xs[c] + half}" y="{ys[r] + half}" fill="{ink_}">{escape(txt)}'
                      "</text>" if txt else "")
            for square, r, c, ink_, txt in zip(svg, rs, cs, inks, texts, strict=True)
        ]  # fmt: skip
    cells = _Cells(xs, ys, cell, rs, cs, fills, exacts, titled, texts, inks)
    if not note:
        note = (
            _("colour scale ±{scale}").format(scale=num(scale))
            if signed
            else _("colour scale 0 to {top}").format(top=num(scale))
        )
    labels = [
        Label(left - 4, top + (r + 0.5) * cell, text, "end", r == selected_row)
        for r, text in enumerate(row_labels)
        if left > 0
    ]
    labels += [
        Label(left + (c + 0.5) * cell, top - 5, text, "start" if rotate else "middle", rotate=rotate)
        for c, text in enumerate(col_labels)
        if top > 0
    ]
    rows, cols = m.shape
    box = (
        (left - 1, top + selected_row * cell - 1, cols * cell + 2, cell + 2)
        if selected_row is not None
        else None
    )
    col_box = None
    if selected_col is not None:
        col_box = (left + selected_col * cell - 1, top - 1, cell + 2, rows * cell + 2)
    cell_box = None
    if mark is not None:
        cell_box = (left + mark[1] * cell - 1, top + mark[0] * cell - 1, cell + 2, cell + 2)
    return Heatmap(
        name=name,
        rows=rows,
        cols=cols,
        cell=cell,
        width=left + cols * cell + 2,
        height=top + rows * cell + 2,
        left=left,
        top=top,
        parts=cells,
        labels=labels,
        selected_row=selected_row,
        note=note,
        highlight=box,
        col_highlight=col_box,
        mark=cell_box,
        paths=paths,
        squares="".join(svg),
    )


COMPACT_CELLS = 48 * 48
LEVELS = 48  # colour levels of a compact heatmap


@functools.lru_cache(maxsize=8)
def _palette(stops: tuple[Color, ...]) -> list[str]:
    """The LEVELS colours of a compact heatmap on one scale."""
    return _mix_many(stops, np.arange(LEVELS) / (LEVELS - 1))[0]


def _level_paths(
    m: np.ndarray, t: np.ndarray, stops: Sequence[Color], cell: float, left: float, top: float
) -> list[tuple[str, str]]:
    """One SVG path per colour level, each a run of unit squares: the same picture as one rect per cell with
    the colour rounded to one of LEVELS steps. Blank (-inf) entries are left out."""
    level = np.rint(np.clip(t, 0.0, 1.0) * (LEVELS - 1)).astype(np.int64).reshape(-1)
    level[~np.isfinite(m.reshape(-1))] = -1
    fills = _palette(stops)
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


@dataclass(frozen=True)
class Table:
    """The numbers behind a picture, for the "show numbers" disclosure."""

    caption: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]
    selected_row: int | None = None

    @cached_property
    def body(self) -> Markup:
        """The table's head and body rows as HTML, written in one pass (every cell escaped)."""
        head = "".join(f'<th scope="col">{escape(c)}</th>' for c in self.columns)
        out = [f'<thead><tr><th scope="col"></th>{head}</tr></thead><tbody>']
        for r, (label, values) in enumerate(self.rows):
            sel = ' class="sel"' if r == self.selected_row else ""
            cells = "".join(f"<td>{escape(v)}</td>" for v in values)
            out.append(f'<tr{sel}><th scope="row">{escape(label)}</th>{cells}</tr>')
        out.append("</tbody>")
        return Markup("".join(out))


def table(
    caption: str,
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    selected_row: int | None = None,
) -> Table:
    """A matrix as rows of 4-digit numbers."""
    m = np.asarray(matrix, dtype=np.float64)
    rows = [(row_labels[r], [num(v, 4) for v in m[r]]) for r in range(m.shape[0])]
    return Table(caption=caption, columns=list(col_labels), rows=rows, selected_row=selected_row)
