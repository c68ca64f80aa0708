"""The "which heads matter here" panel (`view=heads`): for the current text, the change in the top next
token's probability when each head alone is switched off (model/gpt2.py's `head_sweep`, one run per head).

Every square is a link that switches its head off (or back on): the page then shows the model with it off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.ablation import grid_points, is_off, points, toggle_link
from app.views.colour import diverging, ink
from app.views.format import Table, exact, percent, show
from app.views.heatmap import Axes, Heatmap, Label, Look, heatmap
from app.views.links import Link
from app.views.numbers import DataTable
from model import HeadSweep, Token, Trace

CELL = 44.0  # a square's side, in SVG units
LEFT, TOP = 70.0, 26.0
MOVERS = 5  # heads listed as mattering most


@dataclass(frozen=True)
class Square:
    """One head of the grid: its change, colour, and the link switching it off or on."""

    block: int  # from 1
    head: int
    x: float
    y: float
    fill: str
    ink: str
    value: str  # exact change, for data-value
    text: str  # printed inside, in percentage points
    label: str  # what a screen reader says, and the hover title
    link: Link
    off: bool  # switched off in the current state


@dataclass(frozen=True)
class Grid:
    width: float
    height: float
    cell: float
    squares: list[Square]
    labels: list[Label]


@dataclass(frozen=True)
class Mover:
    block: int
    head: int
    change: float
    change_text: str
    link: Link
    off: bool


@dataclass(frozen=True)
class HeadsPanel:
    """The panel: the sweep's grid and its numbers, or why there is none."""

    problem: str  # why there is no sweep ("" when there is one)
    n_layer: int
    n_head: int
    runs: int  # the model's graph runs the sweep took (0 when it was kept from before)
    token: str  # the top next token of the clean run
    token_id: int
    prob: float
    prob_text: str
    grid: Grid | None
    map: Heatmap | None  # the same numbers as a heatmap (the export's figure)
    movers: list[Mover]
    table: Table | None
    scale_text: str


def square_text(change: float, scale: float) -> str:
    """What a square prints: the change in percentage points, to the grid's scale (ablation.grid_points)."""
    return grid_points(change, scale)


def heads_view(
    trace: Trace, state: State, tok: Callable[[int], Token], sweep: HeadSweep | None, problem: str = ""
) -> HeadsPanel:
    """The panel for a sweep of the clean run (or, without one, the reason)."""
    cfg = trace.config
    if sweep is None:
        return HeadsPanel(problem, cfg.n_layer, cfg.n_head, 0, "", 0, 0.0, "", None, None, [], None, "")
    change = sweep.change  # [L, H]
    scale = float(np.abs(change).max()) or 1.0
    squares = []
    for b in range(cfg.n_layer):
        for h in range(cfg.n_head):
            v = float(change[b, h])
            fill = diverging(v, scale)
            off = is_off(state, b + 1, h + 1)
            text = square_text(v, scale)
            # the name starts with what the square shows (WCAG: a link's name holds its visible text)
            where = {"block": b + 1, "head": h + 1}
            label = f"{text} pp: " + _(
                "the change with block {block} head {head} switched off; click to switch it off"
            )
            if off:
                label = (
                    _("off")
                    + ": "
                    + _("block {block} head {head} is switched off now; click to switch it back on")
                )
            label = label.format(**where)
            squares.append(
                Square(
                    block=b + 1,
                    head=h + 1,
                    x=LEFT + h * CELL,
                    y=TOP + b * CELL,
                    fill=fill,
                    ink=ink(fill),
                    value=exact(v),
                    text=text,
                    label=label,
                    link=toggle_link(state, b + 1, h + 1, "panel"),
                    off=off,
                )
            )
    blocks = [_("block {n}").format(n=b + 1) for b in range(cfg.n_layer)]
    # each row twice: "block 3" at the desk, "3" on the projector (static/present.css), where the grid fills
    # the screen's height and its labels are as large as a square allows
    labels = [
        Label(LEFT - 8, TOP + (b + 0.5) * CELL, blocks[b], "end", cls="long") for b in range(cfg.n_layer)
    ]
    labels += [
        Label(LEFT - 8, TOP + (b + 0.5) * CELL, str(b + 1), "end", cls="short") for b in range(cfg.n_layer)
    ]
    labels += [
        Label(LEFT + (h + 0.5) * CELL, TOP - 8, str(h + 1), "middle", cls="col") for h in range(cfg.n_head)
    ]
    grid = Grid(
        width=LEFT + cfg.n_head * CELL + 2,
        height=TOP + cfg.n_layer * CELL + 2,
        cell=CELL,
        squares=squares,
        labels=labels,
    )
    order = np.argsort(-np.abs(change), axis=None, kind="stable")[:MOVERS]
    movers = []
    for k in order.tolist():
        b, h = divmod(int(k), cfg.n_head)
        v = float(change[b, h])
        toggle = toggle_link(state, b + 1, h + 1, "panel")
        movers.append(Mover(b + 1, h + 1, v, points(v), toggle, is_off(state, b + 1, h + 1)))
    heads = [_("head {n}").format(n=h + 1) for h in range(cfg.n_head)]
    token = show(tok(sweep.token).label)
    caption = _("change in the probability of “{token}” with one head switched off").format(token=token)
    numbers = Table(
        caption=caption,
        columns=heads,
        rows=[(blocks[b], [points(float(v)) for v in change[b]]) for b in range(cfg.n_layer)],
    )
    hm = heatmap(
        "head_sweep",
        change,
        Axes(blocks, [str(h + 1) for h in range(cfg.n_head)], 64, 20, describe=_("{row}, head {col}: ")),
        Look(cell=28, scale=scale, pins=False),
    )
    return HeadsPanel(
        problem="",
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        runs=sweep.runs,
        token=token,
        token_id=sweep.token,
        prob=sweep.prob,
        prob_text=percent(sweep.prob),
        grid=grid,
        map=hm,
        movers=movers,
        table=numbers,
        scale_text=points(scale).lstrip("+"),
    )


def sweep_table(sweep: HeadSweep, tok: Callable[[int], Token]) -> DataTable:
    """The sweep's numbers for the exports: a row per block, a column per head (blocks and heads from 1)."""
    n_layer, n_head = sweep.change.shape
    label = tok(sweep.token).label
    return DataTable(
        "head_sweep",
        _(
            "change in the probability of the top next token {token} (id {id}, {prob} with every head on; "
            "temperature 1, no filter) when one head alone is switched off"
        ).format(token=f"“{show(label)}”", id=sweep.token, prob=exact(sweep.prob)),
        [n_layer, n_head],
        ["block"],
        [[b + 1] for b in range(n_layer)],
        [f"head {h + 1}" for h in range(n_head)],
        sweep.change,
    )
