"""The transformer blocks of the overview, drawn with the data that flows through them.

Stacked (the default): the selected block in front, with its insides for the selected head: each token's
q, k and v (first numbers), the attention lines of the selected token, the two residual additions as ⊕ with
the skip arcs that carry the stream around attention and the MLP, and the MLP's output size per token. Every
block also has a tile above the stack, which opens it and shows its attention row, MLP size and additions
for the selected token, small. Expanded: all blocks side by side, each with its attention lines, MLP bars
and additions, drawn small.

Every drawn mark (app/views/overview_marks.py) names the tensor it draws. All geometry is in the overview's
SVG user units (app/views/overview.py).
"""

from __future__ import annotations

import numpy as np

from app.i18n import _
from app.state import State
from app.views.colour import SELECTED, SEQUENTIAL, mix_many
from app.views.format import num, percent
from app.views.heatmap import Label
from app.views.links import link
from app.views.overview_marks import Add, Box, Curve, Drawn, Segment, Strip, strips
from model import Trace

# x of the stacked block's parts (the plate runs from X_PLATE to X_PLATE + W_PLATE)
X_PLATE, W_PLATE = 222.0, 432.0
X_ATTN, W_ATTN = 240.0, 170.0
QKV_X, QKV_DIMS, QKV_CELL = (248.0, 276.0, 304.0), 8, 3.0
X_ADD_MID = 426.0
X_MLP, W_MLP = 444.0, 104.0
X_ADD_OUT = 568.0
TILE_X0, TILE_H = X_PLATE + 150.0, 32.0


def _input(b: int) -> str:
    """The stream entering block b."""
    return "embed.sum" if b == 0 else f"block{b - 1}.resid.out"


def _arc(x0: float, x1: float, y: float, lift: float) -> str:
    """A skip arc from the stream at x0 over a part to its ⊕ at x1, through the gap above the token's row."""
    return f"M{x0:.1f},{y:.2f} C{x0 + 12:.1f},{y - lift:.2f} {x1 - 12:.1f},{y - lift:.2f} {x1:.1f},{y:.2f}"


def _mlp_sizes(trace: Trace, b: int) -> np.ndarray:
    return np.linalg.norm(trace[f"block{b}.mlp.out"].astype(np.float64), axis=-1)  # [T]


def _lines(
    trace: Trace,
    state: State,
    b: int,
    x0: float,
    x1: float,
    ys: list[float],
    chosen: int,
    words: list[str],
    thick: float,
) -> list[Curve]:
    """The attention lines of the selected token in block b: one from each token it reads, as thick as its
    share."""
    probs = trace[f"block{b}.attn.probs"][state.head - 1]
    y_q = ys[chosen]
    bend = (x1 - x0) * 0.45
    out = []
    for j in range(chosen + 1):
        p = float(probs[chosen, j])
        out.append(
            Curve(
                d=f"M{x0:.1f},{ys[j]:.2f} C{x0 + bend:.1f},{ys[j]:.2f} "
                f"{x1 - bend:.1f},{y_q:.2f} {x1:.1f},{y_q:.2f}",
                stroke=SELECTED,
                width=round(max(thick * 0.05, thick * p), 3),
                value=f"{p:.9g}",
                tensor=f"block{b}.attn.probs",
                title=_("{reader} reads {pct} from {read} (block {block}, head {head})").format(
                    reader=f"“{words[chosen]}”",
                    pct=percent(p),
                    read=f"“{words[j]}”",
                    block=b + 1,
                    head=state.head,
                ),
            )
        )
    return out


def _adds(
    trace: Trace, b: int, i: int, word: str, x_mid: float, x_out: float, y: float, r: float
) -> list[Add]:
    mid, out = (f"block{b}.resid.{x}" for x in ("mid", "out"))
    size = {x: num(float(np.linalg.norm(trace[x][i].astype(np.float64)))) for x in (mid, out)}
    return [
        Add(
            x_mid,
            y,
            r,
            mid,
            _("{tok}, block {b}: the attention's output is added to the stream (length {n})").format(
                tok=word, b=b + 1, n=size[mid]
            ),
        ),
        Add(
            x_out,
            y,
            r,
            out,
            _("{tok}, block {b}: the MLP's output is added to the stream (length {n})").format(
                tok=word, b=b + 1, n=size[out]
            ),
        ),
    ]


def stacked(
    trace: Trace,
    state: State,
    ys: list[float],
    band: float,
    top: float,
    area: float,
    chosen: int,
    words: list[str],
) -> Drawn:
    """The selected block in front, its insides drawn with the data; a tile above the stack per block."""
    cfg = trace.config
    layer, head = state.layer - 1, state.head - 1
    d = Drawn()
    plate_y, plate_h = top - 68, area + 84
    for k in (2, 1):  # the stack: plates peeking out behind the selected block
        if cfg.n_layer > k:
            d.boxes.append(
                Box(X_PLATE + 7 * k, plate_y - 7 * k, W_PLATE, plate_h, "", link(state), kind="back")
            )
    d.boxes.append(
        Box(
            X_PLATE,
            plate_y,
            W_PLATE,
            plate_h,
            _("the selected block; the others are stacked behind it"),
            link(state, "panel"),
            kind="plate",
            text=Label(
                X_PLATE + 10,
                top - 50,
                _("Block {n} of {total}").format(n=state.layer, total=cfg.n_layer),
                "start",
            ),
        )
    )
    _tiles(trace, state, top, chosen, words[chosen], d)
    sub_y, sub_h = top - 14, area + 22
    d.boxes += [
        Box(
            X_ATTN,
            sub_y,
            W_ATTN,
            sub_h,
            _(
                "block {block}: LayerNorm, then {heads} attention heads (q, k, v and lines: head {head}, "
                "for the selected token)"
            ).format(block=state.layer, heads=cfg.n_head, head=state.head),
            link(state, "panel", view="attention"),
            state.view == "attention",
            "sub",
            Label(
                X_ATTN + W_ATTN / 2, top - 23, _("Attention · head {head}").format(head=state.head), "middle"
            ),
        ),
        Box(
            X_MLP,
            sub_y,
            W_MLP,
            sub_h,
            _("block {block}: LayerNorm, then the MLP (bars: size of its output per token)").format(
                block=state.layer
            ),
            link(state, "panel", view="mlp"),
            state.view == "mlp",
            "sub",
            Label(X_MLP + W_MLP / 2, top - 23, _("MLP"), "middle"),
        ),
    ]
    p = f"block{layer}"
    h = min(band, 14.0) * 0.8
    for x, part in zip(QKV_X, ("q", "k", "v"), strict=True):
        m = trace[f"{p}.{part}"][head][:, :QKV_DIMS].astype(np.float64)
        what = _("its {part} in head {head}").format(part=part, head=state.head)
        d.strips += strips(f"{p}.{part}", m, x, QKV_CELL, ys, h, words, what, cfg.head_dim)
    d.curves += _lines(
        trace, state, layer, QKV_X[2] + QKV_DIMS * QKV_CELL + 6, X_ATTN + W_ATTN - 8, ys, chosen, words, 12.0
    )
    sizes = _mlp_sizes(trace, layer)
    largest = float(sizes.max()) or 1.0
    r = min(5.5, band * 0.42)
    for i, y in enumerate(ys):
        d.boxes.append(
            Box(
                X_MLP + 8,
                y - band * 0.35,
                max((W_MLP - 16) * float(sizes[i]) / largest, 1.0),
                band * 0.7,
                _("size of the MLP's output for {tok}: {size}").format(
                    tok=f"“{words[i]}”", size=num(sizes[i])
                ),
                link(state, "panel", view="mlp", token=i + 1),
                i == chosen,
                "mark",
                tensor=f"{p}.mlp.out",
            )
        )
        lift = band * 0.5 + (ys[1] - ys[0] if len(ys) > 1 else band * 2) * 0.22
        d.curves += [
            Curve(
                _arc(X_ATTN - 10, X_ADD_MID - r, y, lift),
                _("{tok}: the stream skips around attention and is added back").format(tok=f"“{words[i]}”"),
                "",
                cls="skip",
                tensor=_input(layer),
            ),
            Curve(
                _arc(X_ADD_MID + r, X_ADD_OUT - r, y, lift),
                _("{tok}: the stream skips around the MLP and is added back").format(tok=f"“{words[i]}”"),
                "",
                cls="skip",
                tensor=f"{p}.resid.mid",
            ),
        ]
        d.adds += _adds(trace, layer, i, f"“{words[i]}”", X_ADD_MID, X_ADD_OUT, y, r)
        d.segments.append(
            [
                Segment(X_PLATE, X_ADD_MID - X_PLATE, _input(layer)),
                Segment(X_ADD_MID, X_ADD_OUT - X_ADD_MID, f"{p}.resid.mid"),
                Segment(X_ADD_OUT, X_PLATE + W_PLATE - X_ADD_OUT, f"{p}.resid.out"),
            ]
        )
    return d


def _tiles(trace: Trace, state: State, top: float, chosen: int, word: str, d: Drawn) -> None:
    """One tile per block above the stack: it opens the block and shows, for the selected token, its
    attention row (head `state.head`), the size of its MLP output, and its two additions."""
    cfg = trace.config
    n_layer = cfg.n_layer
    w = min(22.0, (W_PLATE - 160) / n_layer)
    y = top - 64
    sizes = np.array([_mlp_sizes(trace, b)[chosen] for b in range(n_layer)])
    largest = float(sizes.max()) or 1.0
    for b in range(n_layer):
        x = TILE_X0 + b * w
        inner = w - 7
        number = (
            Label(x + (w - 3) / 2, y + 8, str(b + 1), "middle", b == state.layer - 1) if w >= 14 else None
        )
        d.boxes.append(
            Box(
                x,
                y,
                w - 3,
                TILE_H,
                _("block {n}").format(n=b + 1),
                link(state, "panel", layer=b + 1),
                b == state.layer - 1,
                "nav",
                number,
            )
        )
        row = trace[f"block{b}.attn.probs"][state.head - 1][chosen, : chosen + 1].astype(np.float64)
        fills = mix_many(SEQUENTIAL, row)[0]
        cell = inner / len(row)
        d.strips.append(
            Strip(
                f"block{b}.attn.probs",
                x + 2,
                y + 14,
                round(cell, 3),
                4.0,
                _("block {b}, head {h}: where {tok} looks (its attention row)").format(
                    b=b + 1, h=state.head, tok=word
                ),
                [
                    (round(x + 2 + k * cell, 3), f, f"{v:.9g}")
                    for k, (f, v) in enumerate(zip(fills, row.tolist(), strict=True))
                ],
            )
        )
        d.boxes.append(
            Box(
                x + 2,
                y + 20.5,
                max(inner * float(sizes[b]) / largest, 0.8),
                3.0,
                _("block {b}: size of the MLP's output for {tok}: {size}").format(
                    b=b + 1, tok=word, size=num(sizes[b])
                ),
                link(state, "panel", view="mlp", layer=b + 1),
                b == state.layer - 1,
                "mark",
                tensor=f"block{b}.mlp.out",
            )
        )
        d.adds += _adds(trace, b, chosen, word, x + 4.5, x + w - 7.5, y + 27.5, 1.9)


def expanded(
    trace: Trace,
    state: State,
    ys: list[float],
    band: float,
    top: float,
    area: float,
    chosen: int,
    words: list[str],
) -> Drawn:
    """Every block side by side: its attention lines and MLP bars drawn small, the selected token's
    additions, and each token's stream named between them."""
    cfg = trace.config
    layer = state.layer - 1
    d = Drawn()
    slot = W_PLATE / cfg.n_layer
    plate_y, plate_h = top - 68, area + 84
    sub_y, sub_h = top - 14, area + 22
    bounds: list[tuple[float, float]] = []  # (⊕ mid, ⊕ out) of each block
    for b in range(cfg.n_layer):
        x = X_PLATE + b * slot
        number = Label(x + slot / 2, top - 46, str(b + 1), "middle", b == layer) if slot >= 12 else None
        d.boxes.append(
            Box(
                x + 1,
                plate_y,
                slot - 2,
                plate_h,
                _("block {n}").format(n=b + 1),
                link(state, "panel", layer=b + 1),
                b == layer,
                "plate",
                number,
            )
        )
        for k, (what, view) in enumerate(((_("attention"), "attention"), (_("MLP"), "mlp"))):
            d.boxes.append(
                Box(
                    x + slot * (0.06 + 0.5 * k),
                    sub_y,
                    slot * (0.36 if k == 0 else 0.32),
                    sub_h,
                    _("block {n}: {what}").format(n=b + 1, what=what),
                    link(state, "panel", view=view, layer=b + 1),
                    b == layer and state.view == view,
                    "sub",
                )
            )
        d.curves += _lines(trace, state, b, x + slot * 0.09, x + slot * 0.39, ys, chosen, words, 4.0)
        sizes = _mlp_sizes(trace, b)
        largest = float(sizes.max()) or 1.0
        for i, y in enumerate(ys):
            d.boxes.append(
                Box(
                    x + slot * 0.58,
                    y - band * 0.3,
                    max(slot * 0.24 * float(sizes[i]) / largest, 0.6),
                    band * 0.6,
                    _("block {b}: size of the MLP's output for {tok}: {size}").format(
                        b=b + 1, tok=f"“{words[i]}”", size=num(sizes[i])
                    ),
                    link(state, "panel", view="mlp", layer=b + 1, token=i + 1),
                    i == chosen,
                    "mark",
                    tensor=f"block{b}.mlp.out",
                )
            )
        mid, out = x + slot * 0.47, x + slot * 0.94
        bounds.append((mid, out))
        d.adds += _adds(trace, b, chosen, f"“{words[chosen]}”", mid, out, ys[chosen], min(3.0, band * 0.3))
    for _i in ys:
        segments, start = [], X_PLATE
        for b, (mid, out) in enumerate(bounds):
            segments += [
                Segment(start, mid - start, _input(b)),
                Segment(mid, out - mid, f"block{b}.resid.mid"),
            ]
            start = out
        segments.append(Segment(start, X_PLATE + W_PLATE - start, f"block{cfg.n_layer - 1}.resid.out"))
        d.segments.append(segments)
    return d
