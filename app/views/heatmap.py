"""Heatmaps: a matrix drawn as coloured squares with row and column labels, and its shrunk overview.

`heatmap()` works out every square's place, colour, exact value and title, one list per attribute (a page may
hold thousands of squares); app/views/markup.py writes them as SVG in one pass. Past COMPACT_CELLS squares it
draws one path per colour level instead (no per-square value or title: too small to point at).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.views import markup
from app.views.colour import DIVERGING, LEVELS, SEQUENTIAL, Color, mix_many, palette
from app.views.format import num

COMPACT_CELLS = 48 * 48


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
        """The squares as SVG markup (app/views/markup.py: a template loop over thousands of cells is the
        slowest part of a page)."""
        return markup.heatmap_cells(self.squares, self.paths)


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
    flat = m.reshape(-1)
    keep = np.flatnonzero(flat != -np.inf) if not compact else np.zeros(0, np.int64)  # -inf: never drawn
    rs, cs = (k.tolist() for k in np.divmod(keep, cols))
    values = flat[keep].tolist()
    fills, inks = mix_many(stops, t.reshape(-1)[keep]) if values else ([], [])
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
        # written now, once: a heatmap is kept with its trace (app/views/memo.py) and drawn by many pages
        squares=markup.squares(cells, titles=titles, numbers=numbers) if not compact else "",
    )


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
