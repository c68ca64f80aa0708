"""The embedding panel: token id -> a row of the token table, plus a row of the position table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.format import Table, num, short, show, table
from app.views.heatmap import Axes, Heatmap, Look, Marks, heatmap
from app.views.memo import memo
from app.views.motion import Player, player
from app.views.tokens import selected_index
from app.views.vectors import WorkedLine, played_dims, vector
from model import Token, Trace

DIMS = 16  # how many of the C numbers per vector are drawn (the table and the API have them all)


@dataclass(frozen=True)
class TokenRow:
    position: int  # counted from 1
    id: int
    label: str
    norms: tuple[str, str, str]  # length of the token, position and summed vectors
    selected: bool


@dataclass(frozen=True)
class Embedding:
    n_embd: int
    vocab: int
    n_positions: int
    dims: int
    maps: list[Heatmap]  # embed.token, embed.position, embed.sum
    captions: list[str]
    map_labels: list[str]
    rows: list[TokenRow]
    tables: list[Table]
    example: str  # one worked number for the selected token
    player: Player  # the sum, played: the token's row, its position's row, then the sum number by number
    sum_steps: list[WorkedLine]  # the played sum, line by line
    selected: str  # the selected token, quoted


def embedding_view(trace: Trace, state: State, tok: Callable[[int], Token]) -> Embedding:
    """The three embedding tensors for every token, first DIMS dimensions drawn."""
    chosen = selected_index(state, trace.n_tokens)
    present = state.present
    return memo(trace, ("embedding", chosen, present), lambda: _embedding(trace, chosen, tok, present))


def _embedding(trace: Trace, chosen: int, tok: Callable[[int], Token], present: bool) -> Embedding:
    cfg = trace.config
    n = trace.n_tokens
    dims = min(DIMS, cfg.n_embd)
    labels = [short(tok(i).label, 12) for i in trace.ids]
    names = ("embed.token", "embed.position", "embed.sum")
    parts = [trace[name][:, :dims] for name in names]
    scale = float(max(np.abs(p).max() for p in parts)) or 1.0
    cell = 12.0 if n <= 24 else max(4.0, 288.0 / n)
    cols = [str(d) for d in range(dims)]
    maps = [
        heatmap(
            name,
            part,
            Axes(labels, cols, left=96 if k == 0 else 0, describe=_("{row}, dimension {col}: ")),
            Look(cell=cell, scale=scale),
            Marks(row=chosen),
        )
        for k, (name, part) in enumerate(zip(names, parts, strict=True))
    ]
    norm = {name: np.linalg.norm(trace[name].astype(np.float64), axis=-1) for name in names}
    rows = [
        TokenRow(
            position=i + 1,
            id=trace.ids[i],
            label=show(tok(trace.ids[i]).label),
            norms=(num(norm[names[0]][i]), num(norm[names[1]][i]), num(norm[names[2]][i])),
            selected=i == chosen,
        )
        for i in range(n)
    ]
    tables = [
        table(
            _("{name}, first {dims} of {d} numbers").format(name=name, dims=dims, d=cfg.n_embd),
            trace[name][:, :dims],
            labels,
            cols,
            chosen,
        )
        for name in names
    ]
    me = f"“{show(tok(trace.ids[chosen]).label)}”"
    played = played_dims(dims, present)
    # [played] each: the selected token's three rows
    picked = [trace[name][chosen, :played] for name in names]
    top = float(max(np.abs(r).max() for r in picked)) or 1.0
    c = cfg.n_embd
    sum_steps = [
        WorkedLine(
            "",
            vector(
                names[0],
                picked[0],
                total=c,
                scale=top,
                cls="frame f0 slide",
                caption=_("the token table's row {id}").format(id=trace.ids[chosen]),
            ),
            "frame f0",
        ),
        WorkedLine(
            "+",
            vector(
                names[1],
                picked[1],
                total=c,
                scale=top,
                cls="frame f1 slide",
                caption=_("the position table's row {row}").format(row=chosen),
            ),
            "frame f1",
        ),
        WorkedLine(
            "=",
            vector(
                names[2],
                picked[2],
                total=c,
                scale=top,
                frames=(2, "drop"),
                caption=_("their sum, number by number"),
            ),
            "frame f2",
        ),
    ]
    t, p, total = (float(trace[name][chosen, 0]) for name in names)
    example = _("For {tok} at position {pos}, dimension 0: {t} + {p} = {total}.").format(
        tok=f"“{show(tok(trace.ids[chosen]).label)}”",
        pos=chosen + 1,
        t=num(t, 4),
        p=num(p, 4),
        total=num(total, 4),
    )
    return Embedding(
        n_embd=cfg.n_embd,
        vocab=cfg.vocab_size,
        n_positions=cfg.n_positions,
        dims=dims,
        maps=maps,
        captions=[_("token embedding"), _("position embedding"), _("sum: enters block 1")],
        map_labels=[_("{name}, first {dims} numbers of each token").format(name=n, dims=dims) for n in names],
        rows=rows,
        tables=tables,
        example=example,
        player=player("emb-sum", _("the embedding sum of {tok}").format(tok=me), 2 + played),
        sum_steps=sum_steps,
        selected=me,
    )
