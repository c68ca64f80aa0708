"""What each of the attention panel's eight steps draws and says, for one (block, head, token).

One function per step, named by the steps' one vocabulary (app/state.py's STEPS, the tensor suffixes, the
tour's keys). Each returns a `StepContent`: the step's result drawn large (`maps`, the figure the export
saves), what it reads drawn small beside it (`inputs`), its numbers tables and its sentences. The figure plays
(app/views/motion.py, static/motion.css) one frame per token row (per head for concat): every square holds
the model's number from the first frame; a frame only reveals squares, or hides the previous step's numbers
drawn over them (`layers`), never an in-between value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from app.i18n import N_, _
from app.views.attention_maps import (
    DIMS,
    Where,
    big_square,
    big_wide,
    flashes,
    future,
    layer,
    small,
)
from app.views.format import MINUS, TIMES, Table, num, table
from app.views.heatmap import Axes, Heatmap, Look, Marks, Motion, heatmap
from model import Trace

TITLES = {
    "qkv": N_("Q, K, V"),
    "scores": N_("q · kᵀ"),
    "scaled": N_("÷ √d"),
    "masked": N_("causal mask"),
    "probs": N_("softmax"),
    "heads": N_("· V"),
    "concat": N_("concat heads"),
    "out": N_("projection"),
}


@dataclass(frozen=True)
class StepContent:
    """What one attention step shows for one (block, head, token): the same for every student."""

    maps: list[Heatmap]  # the result, drawn large (Q, K and V are three)
    titles: list[str]
    inputs: list[Heatmap]  # what the step reads, drawn small before it
    input_titles: list[str]
    tables: list[Table]
    sentences: list[str]
    frames: int  # frames of its motion
    plays: str  # what its motion shows, for the player's name


def _wide_table(w: Where, name: str, m: np.ndarray, caption: str) -> Table:
    return table(caption, m[:, : w.dims], w.labels, [str(c) for c in range(w.dims)], w.chosen)


def qkv(w: Where) -> StepContent:
    maps, tables = [], []
    for part in ("q", "k", "v"):
        name = f"{w.p}.{part}"
        m = w.trace[name][w.h]
        maps.append(big_wide(w, name, m, (w.h,), Motion("row")))
        caption = _("{name}, head {head}, first {dims} of {d}").format(
            name=name, head=w.h + 1, dims=w.dims, d=w.d
        )
        tables.append(_wide_table(w, name, m, caption))
    sentences = [
        _(
            "LayerNorm first rescales each token's vector; then three learned matrices turn it into a "
            "query (what this token looks for), a key (what it offers) and a value (what it passes on), "
            "each {d} numbers per head."
        ).format(d=w.d),
        _("Drawn: the first {dims} of {d} numbers of head {head}, one row per token.").format(
            dims=w.dims, d=w.d, head=w.h + 1
        ),
    ]
    plays = _("each token's query, key and value, row by row")
    return StepContent(maps, ["Q", "K", "V"], [], [], tables, sentences, w.n, plays)


def _square_table(w: Where, name: str, m: np.ndarray) -> Table:
    caption = _("{name}, head {head} (rows: queries, columns: keys)").format(name=name, head=w.h + 1)
    return table(caption, m, w.labels, w.labels, w.chosen)


def scores(w: Where) -> StepContent:
    name = f"{w.p}.attn.scores"
    m = w.trace[name][w.h]
    q, k = (w.trace[f"{w.p}.{x}"][w.h][:, :DIMS] for x in ("q", "k"))
    inputs = [flashes(small(f"{w.p}.q", q, dims=True), w.n), small(f"{w.p}.k", k, dims=True)]
    last = float(m[w.chosen, w.chosen])
    sentences = [
        _("Each query is compared with every key by a dot product: a big score means a good match."),
        _("Row {tok}: its match with itself is {value}.").format(tok=f"“{w.who}”", value=num(last, 4)),
    ]
    return StepContent(
        [big_square(w, name, m, True, Motion("row"))],
        [_(TITLES["scores"])],
        inputs,
        ["Q", "K"],
        [_square_table(w, name, m)],
        sentences,
        w.n,
        _("q · kᵀ filling row by row: query i against every key"),
    )


def scaled(w: Where) -> StepContent:
    name = f"{w.p}.attn.scaled"
    m = w.trace[name][w.h]
    raw_m = w.trace[f"{w.p}.attn.scores"][w.h]
    big = big_square(w, name, m, True, Motion("row", "shrink"))
    before = big_square(w, f"{w.p}.attn.scores", raw_m, True, Motion("row", "hide"), over=True)
    root = num(np.sqrt(w.d), 4)
    raw = num(float(raw_m[w.chosen, w.chosen]), 4)
    sentences = [
        _(
            "The scores are divided by √d = √{d} ≈ {root}, so that they do not grow with the head "
            "size and the softmax stays smooth."
        ).format(d=w.d, root=root),
        _("Row {tok}, itself: {raw} ÷ {root} = {value}.").format(
            tok=f"“{w.who}”", raw=raw, root=root, value=num(float(m[w.chosen, w.chosen]), 4)
        ),
    ]
    return StepContent(
        [replace(big, layers=[layer(before.name, before)])],
        [_(TITLES["scaled"])],
        [],
        [],
        [_square_table(w, name, m)],
        sentences,
        w.n,
        _("each row of scores divided by √d"),
    )


def masked(w: Where) -> StepContent:
    name = f"{w.p}.attn.masked"
    m = w.trace[name][w.h]
    big = big_square(w, name, m, True, None)
    # the scaled scores of the later tokens, greyed out row by row
    later = np.where(np.triu(np.ones_like(m, dtype=bool), 1), w.trace[f"{w.p}.attn.scaled"][w.h], -np.inf)
    scale = float(np.abs(m[np.isfinite(m)]).max()) if np.isfinite(m).any() else 1.0
    hidden = big_square(w, f"{w.p}.attn.scaled", later, True, None, over=True, scale=scale)
    greys = future(big, w.n, "future")
    sentences = [
        _(
            "The causal mask: a token may only look at itself and the tokens before it, so every "
            "score above the diagonal is set to {minus}∞ (blank here)."
        ).format(minus=MINUS),
        _("This is what lets GPT-2 learn to predict the next token without seeing it."),
    ]
    return StepContent(
        [replace(big, layers=[layer(hidden.name, hidden), f'<g class="layer">{greys}</g>'])],
        [_(TITLES["masked"])],
        [],
        [],
        [_square_table(w, name, m)],
        sentences,
        w.n,
        _("the later tokens greyed out, row by row"),
    )


def probs(w: Where) -> StepContent:
    name = f"{w.p}.attn.probs"
    m = w.trace[name][w.h]
    big = big_square(w, name, m, False, None)
    blanks = future(big, w.n, "blank", "hide")  # until its row's frame, the future is blank, as masked
    before = big_square(
        w,
        f"{w.p}.attn.masked",
        w.trace[f"{w.p}.attn.masked"][w.h],
        True,
        Motion("row", "hide"),
        over=True,
    )
    favourite = w.labels[int(np.argmax(m[w.chosen]))]
    sentences = [
        _(
            "Softmax turns each row into probabilities that add up to 1: how much each token listens "
            "to each earlier one. {minus}∞ becomes exactly 0."
        ).format(minus=MINUS),
        _("Row {tok} puts {pct} on its favourite token {favourite}.").format(
            tok=f"“{w.who}”", pct=num(float(m[w.chosen].max()) * 100, 3) + "%", favourite=f"“{favourite}”"
        )
        # a softmax row adds up to 1; all 0 only when the head is switched off (its probabilities times 0)
        if m[w.chosen].any()
        else _(
            "This head is switched off: its attention probabilities are multiplied by 0, so it passes "
            "nothing on."
        ),
    ]
    return StepContent(
        [replace(big, layers=[layer(before.name, before), f'<g class="layer">{blanks}</g>'])],
        [_(TITLES["probs"])],
        [],
        [],
        [_square_table(w, name, m)],
        sentences,
        w.n,
        _("each row of masked scores becoming probabilities"),
    )


def heads(w: Where) -> StepContent:
    name = f"{w.p}.attn.heads"
    m = w.trace[name][w.h]
    weights = w.trace[f"{w.p}.attn.probs"][w.h]
    v = w.trace[f"{w.p}.v"][w.h][:, :DIMS]
    inputs = [
        flashes(small(f"{w.p}.attn.probs", weights, signed=False), w.n),
        small(f"{w.p}.v", v, dims=True),
    ]
    caption = _("{name}, head {head}, first {dims} of {d}").format(
        name=name, head=w.h + 1, dims=w.dims, d=w.d
    )
    sentences = [
        _(
            "Each token's output from this head is the average of the value vectors, weighted by its row "
            "of attention probabilities."
        ),
        _("Drawn: the first {dims} of {d} numbers.").format(dims=w.dims, d=w.d),
    ]
    return StepContent(
        [big_wide(w, name, m, (w.h,), Motion("row", "slide"))],
        [_("probabilities · V")],
        inputs,
        [_("probabilities"), "V"],
        [_wide_table(w, name, m, caption)],
        sentences,
        w.n,
        _("each row of probabilities weighing the values into the head's output"),
    )


def concat(w: Where) -> StepContent:
    cfg = w.trace.config
    name = f"{w.p}.attn.heads"
    m = np.linalg.norm(w.trace[name].astype(np.float64), axis=-1).T  # [T, H]: size of each head's output
    top = float(m.max())
    big = heatmap(
        name,
        m,
        Axes(
            w.labels,
            [str(k + 1) for k in range(cfg.n_head)],
            left=w.left,
            top=18,
            describe=_("{row}, head {col}: length "),
        ),
        Look(cell=22, signed=False, scale=top, pin=f"‖{name}[{{col}}, {{row}}]‖", motion=Motion("col")),
        Marks(row=w.chosen, col=w.h),
        note=_("colour: length of each head's {d}-number output, 0 to {top}").format(d=w.d, top=num(top)),
    )
    heads_named = [_("head {n}").format(n=k + 1) for k in range(cfg.n_head)]
    sentences = [
        _(
            "All {h} heads run side by side; their {d}-number outputs are placed end to end, giving "
            "{h} {times} {d} = {c} numbers per token again."
        ).format(h=cfg.n_head, d=w.d, times=TIMES, c=cfg.n_embd),
        _("Drawn: one square per head and token, coloured by how long that head's output vector is."),
    ]
    return StepContent(
        [big],
        [_("{n} heads side by side").format(n=cfg.n_head)],
        [],
        [],
        [
            table(
                _("length of each head's output in {name}").format(name=name),
                m,
                w.labels,
                heads_named,
                w.chosen,
            )
        ],
        sentences,
        cfg.n_head,
        _("the heads' outputs joined, head by head"),
    )


def out(w: Where) -> StepContent:
    cfg = w.trace.config
    name = f"{w.p}.attn.out"
    m = w.trace[name]
    caption = _("{name}, first {dims} of {d}").format(name=name, dims=w.dims, d=cfg.n_embd)
    sentences = [
        _(
            "One more learned matrix ({c} {times} {c}, plus a bias) mixes the heads' outputs. "
            "The result is added to the residual stream: that sum is {name}."
        ).format(c=cfg.n_embd, times=TIMES, name=f"{w.p}.resid.mid"),
        _("Drawn: the first {dims} of {d} numbers.").format(dims=w.dims, d=cfg.n_embd),
    ]
    return StepContent(
        [big_wide(w, name, m, (), Motion("row"))],
        [_("output projection")],
        [],
        [],
        [_wide_table(w, name, m, caption)],
        sentences,
        w.n,
        _("each token's mixed output, row by row"),
    )


STEP_CONTENT: dict[str, Callable[[Where], StepContent]] = {
    "qkv": qkv,
    "scores": scores,
    "scaled": scaled,
    "masked": masked,
    "probs": probs,
    "heads": heads,
    "concat": concat,
    "out": out,
}

# The row of steps drawn side by side: q·kᵀ → ÷√d → mask → softmax → ·V
CHAIN = ("scores", "scaled", "masked", "probs", "heads")


def previews(trace: Trace, b: int, h: int) -> list[Heatmap]:
    """The CHAIN's matrices drawn small, in its order (the selected one is drawn large instead)."""
    p = f"block{b}"
    maps = []
    for key in CHAIN:
        m = trace[f"{p}.attn.{key}"][h]
        wide = key == "heads"  # [T, D]: its first DIMS numbers, as drawn large
        maps.append(
            small(f"{p}.attn.{key}", m[:, :DIMS] if wide else m, signed=key != "probs", size=64.0, dims=wide)
        )
    return maps
