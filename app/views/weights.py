"""The weights behind each panel: the slices of GPT-2's matrices that made the panel's vectors.

For the selected token, each matrix is shown as "this row @ this matrix + this bias = this vector": the row
is the trace's, the matrix and the bias are read from the weights on disk (model/mapped.py) and the vector is
their product, worked out here in float64 (tests check it against the trace's tensor). A matrix is drawn as
a window of ROWS by COLS squares; the product always uses every row. The weights are read only when a panel
opens them (`weights=1` in the URL), and what is read is kept with the trace (app/views/memo.py).

Which weights each panel shows (names as docs/architecture.md's tensor table):
    attention  block{i}.attn.w_q|w_k|w_v (the selected head's columns), b_q|b_k|b_v, or w_o, b_o, by step
    mlp        block{i}.mlp.w_in (the shown neurons' columns), b_in; block{i}.mlp.w_out, b_out
    residual   block{i}.ln1.gamma|beta, block{i}.ln2.gamma|beta, final.ln.gamma|beta
    embedding  embed.wte (the text's rows; the likeliest next tokens' rows: the output layer), embed.wpe
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.format import MINUS, TIMES, num, short, show
from app.views.heatmap import Axes, Heatmap, Look, heatmap
from app.views.links import Downloads, Link, downloads, link
from app.views.memo import memo
from app.views.mlp import shown_neurons
from app.views.tokens import selected_index
from app.views.vectors import Vector, vector
from model import Token, Trace
from model.mapped import MappedWeights

ROWS = 16  # rows of a weight matrix drawn
COLS = 16  # columns of a weight matrix drawn (and numbers of a vector)
CANDIDATES = 8  # next-token candidates whose rows of embed.wte are shown as the output layer
TERMS = 3  # products written out in a worked number
# which of the attention's matrices each step shows: q and k make the scores, v the heads, w_o the output
WEIGHT_VIEWS = ("attention", "mlp", "residual", "embedding")  # the panels with weights behind them
ATTENTION_WEIGHTS = {
    "qkv": "qkv",
    "scores": "qk",
    "scaled": "qk",
    "masked": "qk",
    "probs": "qk",
    "heads": "v",
    "concat": "o",
    "out": "o",
}


@dataclass(frozen=True)
class Product:
    """row @ matrix (+ bias) = vector, for one token: what one weight matrix did."""

    key: str  # short id, e.g. "w_q"
    title: str
    x: Vector  # the input row (its drawn numbers)
    matrix: Heatmap  # a window of the weight matrix
    matrix_caption: str
    bias: Vector | None  # None: GPT-2's output layer has no bias
    y: Vector  # the product (its drawn numbers)
    values: np.ndarray  # the product: every number of y worked out here, float64 [m]
    equals: str  # the trace tensor whose numbers the product gives, e.g. block0.q
    worked: str  # one number written out: y[j] = x[r]·W[r, j] + … + b[j]
    note: str  # which part of the matrix is drawn
    rows: list[int]  # where the drawn window's rows and columns are in the weight `matrix.name`
    cols: list[int]
    transposed: bool = (
        False  # the drawing is the weight turned around: square (r, c) is weight[cols[c], rows[r]]
    )


@dataclass(frozen=True)
class Gains:
    """LayerNorm's last step: normalised * gamma + β = its output, number by number."""

    name: str  # block0.ln1
    title: str
    normalised: Vector
    gamma: Vector
    beta: Vector
    y: Vector
    values: np.ndarray  # normalised · gamma + β, float64
    equals: str


@dataclass(frozen=True)
class Rows:
    """Rows of a weight matrix picked by the text (embed.wte by token id, embed.wpe by position)."""

    title: str
    matrix: Heatmap
    equals: str  # the trace tensor these rows are
    rows: list[int]  # where the drawn rows and columns are in the weight
    cols: list[int]


@dataclass(frozen=True)
class Drawn:
    """What the weight view of one panel shows: the same for every student with this text and these
    controls, kept with the trace."""

    title: str
    lead: str
    products: list[Product]
    gains: list[Gains]
    rows: list[Rows]


@dataclass(frozen=True)
class Weights:
    open: bool
    toggle: Link  # opens or closes the weights
    drawn: Drawn | None  # None while closed
    downloads: Downloads | None


def weight_group(state: State) -> str:
    """Which weights the open panel shows (the memo's key and the export's table names)."""
    return ATTENTION_WEIGHTS[state.step] if state.view == "attention" else state.view


def weights_view(trace: Trace, state: State, stored: MappedWeights, tok: Callable[[int], Token]) -> Weights:
    """The weight slices behind the open panel for the selected token, when the URL opens them."""
    toggle = link(state, "weights", weights=not state.weights)
    if not state.weights or state.view not in WEIGHT_VIEWS:
        return Weights(False, toggle, None, None)
    i = selected_index(state, trace.n_tokens)
    group = weight_group(state)
    key = ("weights", group, state.layer, state.head if state.view == "attention" else 0, i)
    drawn = memo(trace, key, lambda: draw_weights(trace, state, stored, tok, i))
    return Weights(True, toggle, drawn, downloads(state, "weights", weight_tables(state, trace.config)))


def weight_tables(state: State, cfg: object) -> list[str]:
    """The names of the weight tables the export of the open panel's weights holds, in order."""
    b = f"block{state.layer - 1}"
    group = weight_group(state)
    if state.view == "attention":
        if group == "o":
            return [f"{b}.attn.w_o", f"{b}.attn.b_o"]
        return [name for x in group for name in (f"{b}.attn.w_{x}", f"{b}.attn.b_{x}")]
    if state.view == "mlp":
        return [f"{b}.mlp.w_in", f"{b}.mlp.b_in", f"{b}.mlp.w_out", f"{b}.mlp.b_out"]
    if state.view == "residual":
        return [f"{p}.{g}" for p in (f"{b}.ln1", f"{b}.ln2", "final.ln") for g in ("gamma", "beta")]
    if state.view == "embedding":
        return ["embed.wte", "embed.wpe", "embed.wte (output layer)"]
    return []


def draw_weights(
    trace: Trace, state: State, stored: MappedWeights, tok: Callable[[int], Token], i: int
) -> Drawn:
    """The weight view of the open panel for token i (read from `stored`)."""
    me = f"“{show(tok(trace.ids[i]).label)}”"
    b = state.layer - 1
    if state.view == "attention":
        h = state.head - 1
        group = ATTENTION_WEIGHTS[state.step]
        if group == "o":
            products = [_output_projection(trace, stored, b, h, i, me)]
        else:
            products = [_head_projection(trace, stored, b, h, i, x, me) for x in group]
        return Drawn(
            _("The weights of block {b}, head {h}").format(b=state.layer, h=state.head),
            _(
                "Each number of {tok}'s vectors here is its row times a column of a learned matrix, plus a "
                "bias. Drawn: a corner of each matrix; the numbers on the right use every row."
            ).format(tok=me),
            products,
            [],
            [],
        )
    if state.view == "mlp":
        return Drawn(
            _("The weights of block {b}'s MLP").format(b=state.layer),
            _(
                "The MLP's two matrices: W_in makes the {hidden} neurons' inputs from {tok}'s normalised "
                "vector; W_out turns their GELU outputs back into {width} numbers."
            ).format(hidden=4 * trace.config.n_embd, tok=me, width=trace.config.n_embd),
            _mlp_products(trace, stored, b, i, me),
            [],
            [],
        )
    if state.view == "residual":
        names = [
            (f"block{b}.ln1", "embed.sum" if b == 0 else f"block{b - 1}.resid.out"),
            (f"block{b}.ln2", f"block{b}.resid.mid"),
            ("final.ln", f"block{trace.config.n_layer - 1}.resid.out"),
        ]
        return Drawn(
            _("LayerNorm's learned numbers"),
            _(
                "After centring and scaling, each LayerNorm multiplies every number by its own gain γ and "  # noqa: RUF001
                "adds its own bias β, both learned: one pair of {width} numbers per LayerNorm."
            ).format(width=trace.config.n_embd),
            [],
            [_gains(trace, stored, ln, reads, i, me) for ln, reads in names],
            [],
        )
    return Drawn(
        _("The embedding tables"),
        _(
            "The token table embed.wte has a row per token id and the position table embed.wpe a row per "
            "position: the embedding panel's vectors are these rows. GPT-2 uses embed.wte a second time "
            "at the end, turned around, to score every possible next token."
        ),
        [_unembedding(trace, stored, tok)],
        [],
        _embedding_rows(trace, stored, tok),
    )


# ---- products ----------------------------------------------------------------------------------------


def _product(
    key: str,
    title: str,
    x: np.ndarray,
    x_name: str,
    w: np.ndarray,
    w_name: str,
    rows: Sequence[int],
    cols: Sequence[int],
    bias: np.ndarray | None,
    b_name: str,
    y_name: str,
    equals: str,
    note: str,
    *,
    col_labels: Sequence[str] | None = None,
    describe: str | None = None,
    y_start: int | None = None,
    transposed: bool = False,
) -> Product:
    """x [n] @ w [n, m] (+ bias [m]) = y [m], drawn: x at `rows`, w at `rows` by the first COLS columns, the
    bias and y at those columns. `cols` are the columns' indices in the whole weight (and the bias); y's
    numbers are at the same indices of its tensor unless `y_start` numbers them from there (a head's q)."""
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y = x64 @ w64 + (bias.astype(np.float64) if bias is not None else 0.0)  # [m]
    shown = min(COLS, w.shape[1])
    col_idx = list(cols)[:shown]
    labels = list(col_labels)[:shown] if col_labels is not None else [str(c) for c in col_idx]
    r_labels = [str(r) for r in rows]
    window = w[np.asarray(rows)][:, :shown]
    wide = max(len(s) for s in labels) > 3
    axes = Axes(
        r_labels,
        labels,
        left=12 + 7 * max(len(s) for s in r_labels),
        top=(12 + 6 * max(len(s) for s in labels)) if wide else 18,
        rotate=wide,
        describe=describe or f"{w_name}[{{row}}, {{col}}] = ",
    )
    matrix = heatmap(w_name, window, axes, Look(cell=26))
    xs = vector(x_name, x[np.asarray(rows)], indices=rows, total=x.size, caption=_("row"))
    y_idx = col_idx if y_start is None else list(range(y_start, y_start + shown))
    ys = vector(y_name, y[:shown], indices=y_idx, total=y.size, caption=_("= vector"))
    bs = None
    if bias is not None:
        bs = vector(b_name, bias[:shown], indices=col_idx, total=bias.size, caption=_("+ bias"))
    terms = " + ".join(f"{_paren(x[r])} {TIMES} {_paren(w[r, 0])}" for r in rows[:TERMS])
    worked = _("{y}[{j}] = {terms} + … ({n} products in all){bias} = {value}").format(
        y=y_name,
        j=y_idx[0],
        terms=terms,
        n=x.size,
        bias=f" + {_paren(bias[0])}" if bias is not None else "",
        value=num(y[0], 4),
    )
    return Product(
        key,
        title,
        xs,
        matrix,
        w_name,
        bs,
        ys,
        y,
        equals,
        worked,
        note,
        list(rows),
        col_idx,
        transposed,
    )


def _paren(v: float) -> str:
    """A number in a sum: negative ones in parentheses."""
    text = num(v, 3)
    return f"({text})" if text.startswith(MINUS) else text


def _head_projection(trace: Trace, stored: MappedWeights, b: int, h: int, i: int, x: str, me: str) -> Product:
    """ln1 row @ the head's columns of w_q (w_k, w_v) + bias = the head's q (k, v) of token i."""
    cfg = trace.config
    d, p = cfg.head_dim, f"block{b}"
    cols = list(range(h * d, (h + 1) * d))
    w = stored.read(f"{p}.attn.w_{x}", cols=cols)  # [C, D]
    bias = stored.read(f"{p}.attn.b_{x}", cols)  # [D]
    rows = list(range(min(ROWS, cfg.n_embd)))
    titles = {"q": _("W_Q makes the query"), "k": _("W_K makes the key"), "v": _("W_V makes the value")}
    note = _(
        "Drawn: rows {r0} to {r1} of {c} and the first {k} of head {h}'s {d} columns ({c0} to {c1} of "
        "{c}); the product uses all {c} rows."
    ).format(r0=rows[0], r1=rows[-1], c=cfg.n_embd, k=min(COLS, d), h=h + 1, d=d, c0=cols[0], c1=cols[-1])
    return _product(
        f"w_{x}",
        titles[x],
        trace[f"{p}.ln1"][i],
        f"{p}.ln1",
        w,
        f"{p}.attn.w_{x}",
        rows,
        cols,
        bias,
        f"{p}.attn.b_{x}",
        f"{p}.{x}",
        f"{p}.{x}",
        note,
        y_start=0,
    )


def _output_projection(trace: Trace, stored: MappedWeights, b: int, h: int, i: int, me: str) -> Product:
    """The heads' outputs side by side @ w_o + b_o = attn.out of token i; drawn at head h's rows."""
    cfg = trace.config
    d, p = cfg.head_dim, f"block{b}"
    joined = trace[f"{p}.attn.heads"][:, i, :].reshape(-1)  # [H, D] -> [C], head after head
    cols = list(range(min(COLS, cfg.n_embd)))
    w = stored.read(f"{p}.attn.w_o", cols=cols)  # [C, COLS]: every row, the drawn columns
    bias = stored.read(f"{p}.attn.b_o", cols)
    rows = list(range(h * d, h * d + min(ROWS, d)))
    note = _(
        "Drawn: rows {r0} to {r1}, the first of the {d} rows that head {h}'s output meets, and columns "
        "{c0} to {c1} of {c}; the product uses all {c} rows, so every head's output."
    ).format(r0=rows[0], r1=rows[-1], d=d, h=h + 1, c0=cols[0], c1=cols[-1], c=cfg.n_embd)
    return _product(
        "w_o",
        _("W_O joins the heads"),
        joined,
        f"{p}.attn.heads",
        w,
        f"{p}.attn.w_o",
        rows,
        cols,
        bias,
        f"{p}.attn.b_o",
        f"{p}.attn.out",
        f"{p}.attn.out",
        note,
    )


def _mlp_products(trace: Trace, stored: MappedWeights, b: int, i: int, me: str) -> list[Product]:
    """ln2 row @ w_in (the shown neurons' columns) + b_in = mlp.pre; mlp.act row @ w_out + b_out = mlp.out."""
    cfg = trace.config
    p = f"block{b}"
    neurons = shown_neurons(trace, b, i)
    w_in = stored.read(f"{p}.mlp.w_in", cols=neurons)  # [C, k]
    b_in = stored.read(f"{p}.mlp.b_in", neurons)
    rows = list(range(min(ROWS, cfg.n_embd)))
    expand = _product(
        "w_in",
        _("W_in expands to the neurons"),
        trace[f"{p}.ln2"][i],
        f"{p}.ln2",
        w_in,
        f"{p}.mlp.w_in",
        rows,
        neurons,
        b_in,
        f"{p}.mlp.b_in",
        f"{p}.mlp.pre",
        f"{p}.mlp.pre",
        _(
            "Drawn: rows {r0} to {r1} of {c} and the columns of the neurons shown in the MLP's steps; the "
            "product uses all {c} rows."
        ).format(r0=rows[0], r1=rows[-1], c=cfg.n_embd),
    )
    cols = list(range(min(COLS, cfg.n_embd)))
    w_out = stored.read(f"{p}.mlp.w_out", cols=cols)  # [4C, COLS]: every neuron's row, the drawn columns
    b_out = stored.read(f"{p}.mlp.b_out", cols)
    project = _product(
        "w_out",
        _("W_out projects back"),
        trace[f"{p}.mlp.act"][i],
        f"{p}.mlp.act",
        w_out,
        f"{p}.mlp.w_out",
        neurons,
        cols,
        b_out,
        f"{p}.mlp.b_out",
        f"{p}.mlp.out",
        f"{p}.mlp.out",
        _(
            "Drawn: the rows of the same neurons and columns {c0} to {c1} of {c}; the product uses all {n} "
            "neurons' rows."
        ).format(c0=cols[0], c1=cols[-1], c=cfg.n_embd, n=4 * cfg.n_embd),
    )
    return [expand, project]


def _unembedding(trace: Trace, stored: MappedWeights, tok: Callable[[int], Token]) -> Product:
    """final.ln of the last token @ embed.wteᵀ (the likeliest tokens' rows) = their logits."""
    cfg = trace.config
    last = trace.n_tokens - 1
    ids = [int(t) for t in trace.logit_order()[:CANDIDATES]]
    rows_of = stored.read("embed.wte", ids)  # [K, C]: one row per candidate
    dims = list(range(min(ROWS, cfg.n_embd)))
    labels = [short(tok(t).label, 10) for t in ids]
    return _product(
        "wte_out",
        _("The output layer is embed.wte turned around"),
        trace["final.ln"][last],
        "final.ln",
        rows_of.T,
        "embed.wte",
        dims,
        ids,
        None,
        "",
        "logits",
        "logits",
        _(
            "Each column is the row of embed.wte of one of the {k} likeliest next tokens; drawn: its first "
            "{r} of {c} numbers. A token's logit is the last token's final.ln vector times its row."
        ).format(k=len(ids), r=len(dims), c=cfg.n_embd),
        col_labels=labels,
        describe=_("embed.wte, row of {col}, column {row}: "),
        transposed=True,
    )


def _embedding_rows(trace: Trace, stored: MappedWeights, tok: Callable[[int], Token]) -> list[Rows]:
    """The rows of embed.wte the text's ids pick, and the rows of embed.wpe its positions pick."""
    cfg = trace.config
    n = trace.n_tokens
    dims = list(range(min(COLS, cfg.n_embd)))
    labels = [short(tok(t).label, 12) for t in trace.ids]
    token_rows = stored.read("embed.wte", list(trace.ids), dims)  # [T, COLS]
    position_rows = stored.read("embed.wpe", slice(0, n), dims)
    left = 12 + 7 * max(max(len(s) for s in labels), 8)
    cols = [str(d) for d in dims]
    token_names = [f"{t} {s}" for t, s in zip(trace.ids, labels, strict=True)]
    pos_names = [f"{k} {s}" for k, s in enumerate(labels)]
    wte_words = _("embed.wte, row {row}, column {col}: ")
    pos_words = _("embed.wpe, row {row}, column {col}: ")
    return [
        Rows(
            _("embed.wte at the text's ids"),
            heatmap("embed.wte", token_rows, Axes(token_names, cols, left + 42, 18, describe=wte_words)),
            "embed.token",
            list(trace.ids),
            dims,
        ),
        Rows(
            _("embed.wpe at the text's positions"),
            heatmap("embed.wpe", position_rows, Axes(pos_names, cols, left + 24, 18, describe=pos_words)),
            "embed.position",
            list(range(n)),
            dims,
        ),
    ]


def _gains(trace: Trace, stored: MappedWeights, ln: str, reads: str, i: int, me: str) -> Gains:
    """(x - mean) ÷ √(var + ε) * gamma + β for token i, its first COLS numbers."""
    cfg = trace.config
    x = trace[reads][i].astype(np.float64)
    normalised = (x - x.mean()) / np.sqrt(x.var() + cfg.layer_norm_epsilon)  # [C]
    dims = list(range(min(COLS, cfg.n_embd)))
    gamma = stored.read(f"{ln}.gamma", dims).astype(np.float64)
    beta = stored.read(f"{ln}.beta", dims).astype(np.float64)
    y = normalised[dims] * gamma + beta
    c = cfg.n_embd
    return Gains(
        name=ln,
        title=_("{name}: centred and scaled, × γ + β").format(name=ln),  # noqa: RUF001
        normalised=vector(f"({reads} − mean) ÷ std", normalised[dims], total=c, caption=_("normalised")),  # noqa: RUF001
        gamma=vector(f"{ln}.gamma", gamma, total=c, caption=_("× γ")),  # noqa: RUF001
        beta=vector(f"{ln}.beta", beta, total=c, caption=_("+ β")),
        y=vector(ln, y, total=c, caption=_("= output")),
        values=y,
        equals=ln,
    )
