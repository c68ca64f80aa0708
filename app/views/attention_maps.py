"""How the attention panel draws its matrices: large for the step shown (squares of at least 20 units, token
labels on every matrix, a colour legend, pinnable squares), small for what a step reads and for the other
steps of the row; and what is drawn over a large map while it plays (app/views/motion.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from app.i18n import _
from app.views.format import short, show
from app.views.heatmap import Axes, Heatmap, Look, Marks, Motion, Outline, heatmap
from app.views.motion import frame_class
from model import Token, Trace

DIMS = 16  # columns drawn of a [T, D] or [T, C] matrix


@dataclass(frozen=True)
class Where:
    """The step's block, head and token, and the trace it reads."""

    trace: Trace
    b: int
    h: int
    chosen: int
    mark: tuple[int, int] | None
    labels: list[str]  # token labels for the big maps
    who: str  # the selected token, shown

    @property
    def left(self) -> float:
        """Room for the token labels of a big map (11-unit monospace, at most 12 characters)."""
        return min(96.0, 8.0 + 6.7 * max(len(label) for label in self.labels))

    @property
    def p(self) -> str:
        return f"block{self.b}"

    @property
    def n(self) -> int:
        return self.trace.n_tokens

    @property
    def d(self) -> int:
        return self.trace.config.head_dim

    @property
    def dims(self) -> int:
        return min(DIMS, self.d)


def where(
    trace: Trace, b: int, h: int, chosen: int, mark: tuple[int, int] | None, tok: Callable[[int], Token]
) -> Where:
    labels = [short(tok(i).label, 12) for i in trace.ids]
    return Where(trace, b, h, chosen, mark, labels, show(tok(trace.ids[chosen]).label))


def square_cell(n: int) -> float:
    """Square size of a big [T, T] map: at least 20 (px at desktop widths), up to 40 for short texts."""
    return float(min(40.0, max(20.0, 320.0 / n)))


def index_labels(n: int, cell: float, first: int = 1) -> list[str]:
    """Labels first..first+n-1 of a small map's rows or columns, every k-th when the squares are too small
    for each (token positions count from 1, as on the page; dimensions from 0, as in the tables)."""
    every = max(1, int(np.ceil((5.0 * len(str(n + first - 1)) + 3.0) / cell)))  # 8-unit digits, 3 apart
    return [str(i + first) if i % every == 0 else "" for i in range(n)]


def big_square(
    w: Where,
    name: str,
    m: np.ndarray,
    signed: bool,
    motion: Motion | None,
    *,
    over: bool = False,
    scale: float | None = None,
) -> Heatmap:
    """A [T, T] matrix, drawn large: token labels on both sides, numbers printed when they fit. `over`: the
    squares of another tensor drawn over the step's own while it plays (no titles, pins or legend)."""
    cell = square_cell(w.n)
    look = Look(
        cell, signed, scale, numbers=cell >= 38, titles=not over, legend=not over, index=(w.h,), motion=motion
    )
    return heatmap(
        name,
        m,
        Axes(w.labels, w.labels, left=w.left, top=70, rotate=True, describe=_("query {row}, key {col}: ")),
        look,
        Marks(row=w.chosen, square=w.mark),
    )


def big_wide(w: Where, name: str, m: np.ndarray, index: tuple[int, ...], motion: Motion | None) -> Heatmap:
    """A [T, D] or [T, C] matrix, drawn large: its first DIMS columns, token labels on every copy."""
    part = m[:, :DIMS]
    return heatmap(
        name,
        part,
        Axes(
            w.labels,
            [str(c) for c in range(part.shape[1])],
            left=w.left,
            top=14,
            describe=_("{row}, dimension {col}: "),
        ),
        Look(cell=20.0, index=index, motion=motion),
        Marks(row=w.chosen),
    )


def small(
    name: str, m: np.ndarray, *, signed: bool = True, size: float = 96.0, dims: bool = False
) -> Heatmap:
    """A matrix drawn small (an input beside a playing step, a preview in the row of steps): token positions
    (and dimensions, when `dims`) as labels, no titles or pins (too small to point at: the big map and the
    tables have the numbers)."""
    rows, cols = m.shape
    cell = float(min(10.0, max(2.0, np.floor(size / max(rows, cols) * 4) / 4)))
    return heatmap(
        name,
        m,
        Axes(index_labels(rows, cell), index_labels(cols, cell, 0 if dims else 1), left=18, top=12),
        Look(cell=cell, signed=signed, titles=False, pins=False, compact=True),
    )


def layer(name: str, squares: Heatmap) -> str:
    """Another tensor's squares drawn over a big map while it plays (hidden in exported files)."""
    return f'<g class="layer" data-tensor="{name}">{squares.markup}</g>'


def flashes(h: Heatmap, n: int) -> Heatmap:
    """`h` with each row outlined during its own frame: the row the playing step is reading."""
    width = h.cols * h.cell + 2
    flashes = [
        Outline(
            f"row-mark {frame_class(r, n, kind='flash')}",
            h.left - 1,
            h.top + r * h.cell - 1,
            width,
            h.cell + 2,
        )
        for r in range(n)
    ]
    return replace(h, outlines=[*h.outlines, *flashes])


def future(h: Heatmap, n: int, cls: str, kind: str = "") -> str:
    """One rectangle per row over the squares of its later tokens (above the diagonal), each in its row's
    frame: the mask greying them, or the blank they are before softmax."""
    c = h.cell
    return "".join(
        f'<rect class="{cls} {frame_class(r, n, kind=kind)}" x="{h.left + (r + 1) * c}" y="{h.top + r * c}" '
        f'width="{(n - r - 1) * c}" height="{c}"/>'
        for r in range(n - 1)
    )
