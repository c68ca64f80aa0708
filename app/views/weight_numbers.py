"""The numbers of the weights behind the open panel, as tables for the CSV and JSON exports.

The same slices the weight view draws a corner of (app/views/weights.py), whole: a head's columns of
block{i}.attn.w_q with every row, the shown neurons' columns of block{i}.mlp.w_in, and so on. Row and column
labels are indices in the whole weight, so a number can be found again in the model's files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from app.i18n import _
from app.state import State
from app.views.mlp import shown_neurons
from app.views.numbers import DataTable
from app.views.tokens import selected_index
from app.views.weights import ATTENTION_WEIGHTS, CANDIDATES, weight_tables
from model import Token, Trace
from model.mapped import MappedWeights


def weight_data_tables(
    trace: Trace, state: State, stored: MappedWeights, tok: Callable[[int], Token]
) -> list[DataTable]:
    """The weight tables of the open panel, named as `weight_tables` lists them."""
    cfg = trace.config
    b, h, d, c = state.layer - 1, state.head - 1, cfg.head_dim, cfg.n_embd
    p = f"block{b}"
    every = list(range(c))
    if state.view == "attention":
        group = ATTENTION_WEIGHTS[state.step]
        head = list(range(h * d, (h + 1) * d))
        if group == "o":
            return [
                _matrix(
                    stored,
                    f"{p}.attn.w_o",
                    head,
                    every,
                    _("the rows that head {h}'s output meets").format(h=h + 1),
                ),
                _vector(stored, f"{p}.attn.b_o", every),
            ]
        tables = []
        for x in group:
            tables += [
                _matrix(stored, f"{p}.attn.w_{x}", every, head, _("head {h}'s columns").format(h=h + 1)),
                _vector(stored, f"{p}.attn.b_{x}", head),
            ]
        return tables
    if state.view == "mlp":
        neurons = shown_neurons(trace, b, selected_index(state, trace.n_tokens))
        shown = _("the neurons the MLP's steps show")
        return [
            _matrix(stored, f"{p}.mlp.w_in", every, neurons, _("columns of {what}").format(what=shown)),
            _vector(stored, f"{p}.mlp.b_in", neurons),
            _matrix(stored, f"{p}.mlp.w_out", neurons, every, _("rows of {what}").format(what=shown)),
            _vector(stored, f"{p}.mlp.b_out", every),
        ]
    if state.view == "residual":
        return [_vector(stored, name, every) for name in weight_tables(state, cfg)]
    if state.view == "embedding":
        ids = list(trace.ids)
        candidates = [int(t) for t in trace.logit_order()[:CANDIDATES]]
        return [
            _matrix(
                stored,
                "embed.wte",
                ids,
                every,
                _("the rows of the text's token ids"),
                [tok(t).label for t in ids],
            ),
            _matrix(
                stored, "embed.wpe", list(range(trace.n_tokens)), every, _("the rows of the text's positions")
            ),
            _matrix(
                stored,
                "embed.wte",
                candidates,
                every,
                _("the rows of the likeliest next tokens: the output layer uses them"),
                [tok(t).label for t in candidates],
                table="embed.wte (output layer)",
            ),
        ]
    return []


def _matrix(
    stored: MappedWeights,
    name: str,
    rows: Sequence[int],
    cols: Sequence[int],
    which: str,
    labels: Sequence[str] | None = None,
    table: str = "",
) -> DataTable:
    """Weight `name` at `rows` @ `cols`, each row labelled by its index (and a token's label); the table is
    called `table` when the same weight gives two."""
    values = stored.read(name, list(rows), list(cols))  # [rows, cols]
    index = ["row", "token"] if labels is not None else ["row"]
    row_labels: list[list[str | int | float]] = [
        [r, labels[k]] if labels is not None else [r] for k, r in enumerate(rows)
    ]
    return DataTable(
        table or name,
        _("{which}; rows and columns numbered as in the whole weight").format(which=which),
        list(stored.shape(name)),
        index,
        row_labels,
        [str(x) for x in cols],
        values,
    )


def _vector(stored: MappedWeights, name: str, positions: Sequence[int]) -> DataTable:
    """Vector weight `name` at `positions`, as one row."""
    values = stored.read(name, list(positions)).reshape(1, -1)
    return DataTable(
        name,
        _("numbered as in the whole weight"),
        list(stored.shape(name)),
        ["weight"],
        [[name]],
        [str(x) for x in positions],
        np.asarray(values),
    )
