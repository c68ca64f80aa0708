"""One vector drawn as a row of numbered squares: a token's row, a bias, a LayerNorm gain, a layer's output.

The panels' worked steps (the embedding sum, LayerNorm's centre and scale, the MLP's expand, GELU and
project) and the weights' "row @ matrix + bias = vector" are rows of these. Each square prints its number
and carries it exactly (data-value), with the index it has in the whole tensor (data-index). A strip that
plays carries motion classes (app/views/motion.py): the whole strip in one frame, or one square per frame.
Drawn by the `vector` macro of templates/vectors.html.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.views.colour import diverging, ink
from app.views.format import exact, num
from app.views.motion import frame_class

CELL_W, CELL_H, TOP = 56.0, 24.0, 14.0  # a square's size, and room for the indices above the squares
PRESENT_DIMS = 8  # numbers of a played vector in the projector view: few, so each reads from the back row


def played_dims(dims: int, present: bool) -> int:
    """How many numbers of a vector a panel plays: `dims` at the desk, at most PRESENT_DIMS on the projector
    (static/present.css sizes a vector by its height, so 8 numbers fill the screen's width)."""
    return min(dims, PRESENT_DIMS) if present else dims


@dataclass(frozen=True)
class Square:
    x: float
    index: int  # in the whole tensor's last axis
    text: str  # the number, for people
    value: str  # the number, exactly
    fill: str
    ink: str
    cls: str  # motion classes, "" when it does not play on its own

    @property
    def cx(self) -> float:
        return self.x + CELL_W / 2


@dataclass(frozen=True)
class Vector:
    name: str  # the tensor it shows, e.g. block0.ln1 or block0.attn.b_q
    caption: str
    squares: list[Square]
    total: int  # the vector's length (the squares show `len(squares)` of them)
    width: float
    height: float
    label: str  # the accessible name of the drawing
    cls: str = ""  # motion classes of the whole strip
    top: float = TOP  # where the squares start (the indices are written above them)
    cell_w: float = CELL_W - 1
    cell_h: float = CELL_H

    @property
    def middle(self) -> float:
        return self.top + CELL_H / 2

    @property
    def more(self) -> int:
        """How many of the vector's numbers are not drawn."""
        return self.total - len(self.squares)


def vector(
    name: str,
    values: Sequence[float] | np.ndarray,
    *,
    indices: Sequence[int] | None = None,
    total: int | None = None,
    caption: str = "",
    label: str = "",
    scale: float | None = None,
    cls: str = "",
    frames: tuple[int, str] | None = None,
) -> Vector:
    """A strip of `values` (at `indices` of a vector of `total`); `scale` sets the colours' ends (default: the
    largest magnitude shown). `cls`: motion classes of the whole strip; `frames=(first, kind)`: one square
    per frame from frame `first` instead."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    idx = list(range(v.size)) if indices is None else [int(i) for i in indices]
    top = float(np.abs(v).max()) if scale is None and v.size else (scale or 1.0)
    squares = []
    for k, (x, i) in enumerate(zip(v.tolist(), idx, strict=True)):
        fill = diverging(x, top or 1.0)
        motion = frame_class(k, v.size, frames[0], frames[1]) if frames is not None else ""
        text = num(x)
        squares.append(
            Square(k * CELL_W, i, text if len(text) <= 8 else num(x, 2), exact(x), fill, ink(fill), motion)
        )
    return Vector(
        name=name,
        caption=caption,
        squares=squares,
        total=v.size if total is None else total,
        width=max(len(squares), 1) * CELL_W + 1,
        height=TOP + CELL_H + 1,
        label=label or name,
        cls=cls
        or (f"frame f{frames[0]}" if frames is not None else ""),  # its caption comes with its first square
    )


@dataclass(frozen=True)
class WorkedLine:
    """One line of a worked step: the operation that made a vector (e.g. "+", "÷ std"), and the vector;
    `cls` is the frame the line appears in when the step plays."""

    op: str
    vector: Vector
    cls: str = ""
    note: str = ""  # a short word under the operation, e.g. "GELU"
