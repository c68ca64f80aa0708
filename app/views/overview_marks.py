"""The marks the overview draws, each naming the tensor it draws (`tensor`, written as data-tensor) in
docs/architecture.md's names: boxes and bars, lines and arcs, additions (⊕), vectors as strips of coloured
squares, and the stretches of each token's stream. Geometry in the overview's SVG user units."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.views import markup
from app.views.colour import DIVERGING, mix_many
from app.views.heatmap import Label
from app.views.links import Link


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
    tensor: str = ""  # what a mark draws (data-tensor)


@dataclass(frozen=True)
class Curve:
    """A path: an attention line, a skip arc, or a probability ribbon."""

    d: str
    title: str
    value: str  # the number it stands for, for data-value
    stroke: str = "none"
    width: float = 0.0
    fill: str = "none"
    cls: str = "attn"  # attn | skip
    tensor: str = ""


@dataclass(frozen=True)
class Add:
    """A residual addition, ⊕: a part's output joins the stream (its result is `tensor`)."""

    x: float
    y: float
    r: float
    tensor: str
    title: str

    @property
    def cross(self) -> str:
        """The + inside the circle, as a path."""
        a, x, y = self.r * 0.6, self.x, self.y
        return f"M{x - a:.2f},{y:.2f}h{2 * a:.2f}M{x:.2f},{y - a:.2f}v{2 * a:.2f}"


@dataclass(frozen=True)
class Strip:
    """One token's vector (its first numbers) as a row of coloured squares."""

    tensor: str
    x: float
    y: float  # top edge
    w: float  # of one square
    h: float
    title: str
    squares: list[tuple[float, str, str]]  # (x, fill, exact value)

    @property
    def svg_squares(self) -> Markup:
        """The squares as SVG (app/views/markup.py: a template made them the overview's slowest part)."""
        return markup.strip_squares(self)


@dataclass(frozen=True)
class Segment:
    """A stretch of a token's stream between two additions: the tensor that flows there."""

    x: float
    w: float
    tensor: str


@dataclass
class Drawn:
    """What the blocks add to the overview."""

    boxes: list[Box] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    adds: list[Add] = field(default_factory=list)
    strips: list[Strip] = field(default_factory=list)
    segments: list[list[Segment]] = field(default_factory=list)  # per token, inside the plate


def strips(
    name: str,
    m: np.ndarray,
    x: float,
    w: float,
    ys: list[float],
    h: float,
    words: list[str],
    what: str,
    total: int,
) -> list[Strip]:
    """Every token's row of `m` (the first of its `total` numbers, on one diverging scale) as a strip at x."""
    scale = float(np.abs(m).max()) or 1.0
    fills = mix_many(DIVERGING, (0.5 + 0.5 * m / scale).reshape(-1))[0]
    cols = m.shape[1]
    out = []
    for i, y in enumerate(ys):
        row = m[i].tolist()
        out.append(
            Strip(
                tensor=name,
                x=x,
                y=round(y - h / 2, 2),
                w=w,
                h=round(h, 2),
                title=_("{tok}: {what}, the first {k} of its {d} numbers").format(
                    tok=f"“{words[i]}”", what=what, k=cols, d=total
                ),
                squares=[(round(x + c * w, 2), fills[i * cols + c], f"{v:.9g}") for c, v in enumerate(row)],
            )
        )
    return out
