"""Two prompts side by side (`view=compare`): their tokens, the chosen head's attention, their predictions and
what differs; and activation patching, prompt A's residual stream copied into prompt B's run.

Patching counts positions from the start in both prompts, so a vector keeps its position embedding: a patch
at token t needs t in both prompts, and the grid covers the positions both have. The grid's metric is the
share of the difference restored, on the probability of A's likeliest next token t_A (temperature 1, no
filter): (p_patched - p_B) / (p_A - p_B); 1 means the patch alone turns B's prediction of t_A into A's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.i18n import _
from app.state import State
from app.views.ablation import grid_points, points
from app.views.colour import diverging, ink, sequential
from app.views.format import exact, percent, short, show
from app.views.heatmap import Axes, Heatmap, Label, Look, heatmap
from app.views.links import Link, link
from model import PatchSweep, Token, Trace
from model.sampling import softmax

TOP = 8  # predictions listed per prompt
JOINT = 5  # of each prompt's top, listed in the joint table
CELL = 40.0  # the grid's squares
GRID_LEFT, GRID_TOP = 118.0, 64.0


@dataclass(frozen=True)
class ChipView:
    position: int  # from 1
    id: int
    label: str
    differs: bool  # the other prompt has another token here, or none
    title: str


@dataclass(frozen=True)
class Prediction:
    rank: int
    id: int
    label: str
    prob: float
    prob_text: str
    width: float
    fill: str
    other: bool  # also among the other prompt's top


@dataclass(frozen=True)
class Side:
    key: str  # "A" or "B"
    text: str
    chips: list[ChipView]
    attention: Heatmap
    attention_label: str
    top: list[Prediction]


@dataclass(frozen=True)
class JointRow:
    """One next token in both runs (and in B's patched run, when there is a patch)."""

    id: int
    label: str
    p_a: float
    p_b: float
    a_text: str
    b_text: str
    change_text: str  # p_B - p_A in percentage points
    fill: str
    patched: float | None = None
    patched_text: str = ""
    moved_text: str = ""  # p_patched - p_B


@dataclass(frozen=True)
class Restoring:
    """How much of the difference on A's top token a patch gives back."""

    token: str
    token_id: int
    p_a: float
    p_b: float
    p_patched: float
    a_text: str
    b_text: str
    patched_text: str
    share: float | None  # None: A and B give the token nearly the same probability
    share_text: str


@dataclass(frozen=True)
class PatchResult:
    site: int  # 0: the embeddings; s: after block s
    token: int  # from 1
    where: str  # "after block 4" or "the embeddings"
    tensor: str
    a_label: str
    b_label: str
    restoring: Restoring
    rows: list[JointRow]
    b_top: str  # B's likeliest next token, before and with the patch
    patched_top: str


@dataclass(frozen=True)
class GridSquare:
    site: int
    token: int  # from 1
    x: float
    y: float
    fill: str
    ink: str
    text: str
    value: str  # exact, for data-value
    label: str
    href: str
    selected: bool


@dataclass(frozen=True)
class PatchGrid:
    width: float
    height: float
    cell: float
    squares: list[GridSquare]
    labels: list[Label]
    token: str  # A's top token, the metric's
    restoring: bool  # squares show the share restored (else the change in probability: no gap to restore)
    runs: int


@dataclass(frozen=True)
class Option:
    value: int
    label: str
    selected: bool


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    layer: int
    head: int
    same_length: bool
    shared: int  # positions both prompts have
    differing: list[int]  # positions (from 1) whose tokens differ
    joint: list[JointRow]
    difference: Heatmap | None  # B's attention minus A's, when the lengths match
    biggest: str  # the largest change of attention, said in words
    patch: PatchResult | None
    grid: PatchGrid | None
    grid_problem: str
    sites: list[Option]
    tokens: list[Option]
    explainer_a: Link  # the explainer on prompt A
    explainer_b: Link


def site_name(site: int) -> str:
    return _("the embeddings") if site == 0 else _("after block {n}").format(n=site)


def site_tensor(site: int) -> str:
    return "embed.sum" if site == 0 else f"block{site - 1}.resid.out"


def _chips(ids: Sequence[int], other: Sequence[int], tok: Callable[[int], Token]) -> list[ChipView]:
    out = []
    for i, t in enumerate(ids):
        differs = i >= len(other) or other[i] != t
        title = _("token {position}, id {id}").format(position=i + 1, id=t)
        if differs:
            title += _(", differs from the other prompt")
        out.append(ChipView(i + 1, t, show(tok(t).label), differs, title))
    return out


def _attention(trace: Trace, layer: int, head: int, tok: Callable[[int], Token], name: str) -> Heatmap:
    n = trace.n_tokens
    m = trace[f"block{layer - 1}.attn.probs"][head - 1].astype(np.float64)  # [T, T]
    m = np.where(np.tri(n, dtype=bool), m, -np.inf)  # the future: blank
    labels = [short(tok(t).label, 10) for t in trace.ids]
    cell = min(34.0, max(10.0, 300.0 / n))
    axes = Axes(
        labels,
        labels if cell >= 14 else [""] * n,
        86,
        64 if cell >= 14 else 4,
        rotate=True,
        describe=_("query {row}, key {col}: "),
    )
    # two maps of the same tensor on one page: no pinned cards (their ids would repeat)
    return heatmap(name, m, axes, Look(cell=cell, signed=False, numbers=cell >= 34, pins=False))


def _top(
    probs: np.ndarray, order: np.ndarray, other: set[int], tok: Callable[[int], Token]
) -> list[Prediction]:
    out = []
    for r, i in enumerate(order[:TOP].tolist()):
        p = float(probs[i])
        out.append(
            Prediction(
                r + 1, i, short(tok(i).label, 16), p, percent(p), max(120 * p, 1.0), sequential(p), i in other
            )
        )
    return out


def _joint(
    ids: list[int],
    pa: np.ndarray,
    pb: np.ndarray,
    tok: Callable[[int], Token],
    patched: np.ndarray | None = None,
) -> list[JointRow]:
    scale = max((abs(float(pb[i] - pa[i])) for i in ids), default=0.0) or 1.0
    rows = []
    for i in ids:
        a, b = float(pa[i]), float(pb[i])
        extra: dict[str, object] = {}
        if patched is not None:
            p = float(patched[i])
            extra = {"patched": p, "patched_text": percent(p), "moved_text": points(p - b)}
        rows.append(
            JointRow(
                i,
                short(tok(i).label, 16),
                a,
                b,
                percent(a),
                percent(b),
                points(b - a),
                diverging(b - a, scale),
                **extra,  # type: ignore[arg-type]
            )
        )
    return rows


def restoring(
    token: int, pa: np.ndarray, pb: np.ndarray, pp: np.ndarray, tok: Callable[[int], Token]
) -> Restoring:
    a, b, p = float(pa[token]), float(pb[token]), float(pp[token])
    share = share_of(a, b, p)
    return Restoring(
        token=show(tok(token).label),
        token_id=token,
        p_a=a,
        p_b=b,
        p_patched=p,
        a_text=percent(a),
        b_text=percent(b),
        patched_text=percent(p),
        share=share,
        share_text=percent(share) if share is not None else "",
    )


MIN_GAP = 1e-3  # A and B closer than 0.1 percentage points on t_A: no difference to restore


def share_of(p_a: float, p_b: float, p_patched: float) -> float | None:
    """(p_patched - p_B) / (p_A - p_B), or None when p_A and p_B are too close for the ratio to mean much."""
    gap = p_a - p_b
    return (p_patched - p_b) / gap if abs(gap) >= MIN_GAP else None


def grid_text(v: float, share: bool, scale: float = 1.0) -> str:
    """A square's printed value: a share as a whole percentage, a change in points to the grid's scale
    (ablation.grid_points); never minus zero."""
    x = v * 100
    if share:
        return "0%" if abs(x) < 0.5 else f"{x:.0f}%".replace("-", "\u2212")
    return grid_points(v, scale)


def grid_view(
    sweep: PatchSweep,
    p_a: float,
    p_b: float,
    state: State,
    b_ids: Sequence[int],
    a_ids: Sequence[int],
    tok: Callable[[int], Token],
    runs: int,
) -> PatchGrid:
    """The blocks-by-positions grid of a patch sweep: each square links to that patch."""
    sites, positions = sweep.probs.shape
    restoring_ = abs(p_a - p_b) >= MIN_GAP
    change = sweep.probs - p_b
    values = change / (p_a - p_b) if restoring_ else change
    scale = 1.0 if restoring_ else (float(np.abs(change).max()) or 1.0)
    squares = []
    for s in range(sites):
        for p in range(positions):
            v = float(values[s, p])
            fill = diverging(v, scale)
            text = grid_text(v, restoring_, scale)
            label = (
                text
                + ": "
                + _("patch {where}, token {token}: {prob} for “{target}”").format(
                    where=site_name(s),
                    token=p + 1,
                    prob=percent(float(sweep.probs[s, p])),
                    target=show(tok(sweep.token).label),
                )
            )
            if restoring_:
                label += _(", {share} of the difference restored").format(share=percent(v))
            else:
                label += _(", a change of {change} percentage points").format(change=text)
            selected = state.patch == (s, p + 1)
            squares.append(
                GridSquare(
                    s,
                    p + 1,
                    GRID_LEFT + p * CELL,
                    GRID_TOP + s * CELL,
                    fill,
                    ink(fill),
                    text,
                    exact(v),
                    label,
                    state.url("patch", patch=(s, p + 1)),
                    selected,
                )
            )
    labels = [Label(GRID_LEFT - 8, GRID_TOP + (s + 0.5) * CELL, site_name(s), "end") for s in range(sites)]
    for p in range(positions):
        a, b = a_ids[p], b_ids[p]
        text = short(tok(b).label, 8) if a == b else f"{short(tok(a).label, 6)}/{short(tok(b).label, 6)}"
        labels.append(
            Label(GRID_LEFT + (p + 0.5) * CELL, GRID_TOP - 6, f"{p + 1} {text}", "start", rotate=True)
        )
    return PatchGrid(
        width=GRID_LEFT + positions * CELL + 60,
        height=GRID_TOP + sites * CELL + 2,
        cell=CELL,
        squares=squares,
        labels=labels,
        token=show(tok(sweep.token).label),
        restoring=restoring_,
        runs=runs,
    )


def compare_view(
    state: State,
    a: Trace,
    b: Trace,
    tok: Callable[[int], Token],
    patched: Trace | None = None,
    sweep: PatchSweep | None = None,
    grid_problem: str = "",
) -> Comparison:
    """Everything the compare view prints, from the two runs (and B's patched run, and the grid's sweep)."""
    cfg = a.config
    pa, pb = softmax(a.logits), softmax(b.logits)  # temperature 1, no filter
    oa, ob = a.logit_order(), b.logit_order()
    top_a, top_b = set(oa[:TOP].tolist()), set(ob[:TOP].tolist())
    layer, head = state.layer, state.head
    where = _("block {block} head {head}").format(block=layer, head=head)
    sides = [
        Side(
            key,
            trace_text,
            _chips(t.ids, o.ids, tok),
            _attention(t, layer, head, tok, f"block{layer - 1}.attn.probs"),
            _("attention of {where} in prompt {key}").format(where=where, key=key),
            _top(p, order, other, tok),
        )
        for key, trace_text, t, o, p, order, other in (
            ("A", state.text, a, b, pa, oa, top_b),
            ("B", state.text2, b, a, pb, ob, top_a),
        )
    ]
    same = a.n_tokens == b.n_tokens
    shared = min(a.n_tokens, b.n_tokens)
    differing = [i + 1 for i in range(max(a.n_tokens, b.n_tokens)) if i >= shared or a.ids[i] != b.ids[i]]
    ids = list(dict.fromkeys([*oa[:JOINT].tolist(), *ob[:JOINT].tolist()]))
    pp = softmax(patched.logits) if patched is not None else None
    if pp is not None:
        ids += [i for i in patched.logit_order()[:3].tolist() if i not in ids]  # type: ignore[union-attr]
    joint = _joint(ids, pa, pb, tok, pp)
    difference, biggest = None, ""
    if same:
        name = f"block{layer - 1}.attn.probs"
        d = b[name][head - 1].astype(np.float64) - a[name][head - 1].astype(np.float64)  # [T, T]
        q, k = np.unravel_index(int(np.argmax(np.abs(d))), d.shape)
        d = np.where(np.tri(a.n_tokens, dtype=bool), d, -np.inf)
        labels = [short(tok(t).label, 10) for t in b.ids]
        cell = min(34.0, max(10.0, 300.0 / a.n_tokens))
        axes = Axes(
            labels,
            labels if cell >= 14 else [""] * a.n_tokens,
            86,
            64 if cell >= 14 else 4,
            rotate=True,
            describe=_("query {row}, key {col}: "),
        )
        difference = heatmap(f"B - A {name}", d, axes, Look(cell=cell, pins=False))
        biggest = _("The largest change: token {q} reads token {k} with {pb} in B against {pa} in A.").format(
            q=q + 1,
            k=k + 1,
            pb=percent(float(b[name][head - 1][q, k])),
            pa=percent(float(a[name][head - 1][q, k])),
        )
    patch = None
    if patched is not None and state.patch is not None:
        site, token = state.patch
        assert pp is not None
        patch = PatchResult(
            site=site,
            token=token,
            where=site_name(site),
            tensor=site_tensor(site),
            a_label=show(tok(a.ids[token - 1]).label),
            b_label=show(tok(b.ids[token - 1]).label),
            restoring=restoring(int(oa[0]), pa, pb, pp, tok),
            rows=joint,
            b_top=show(tok(int(ob[0])).label),
            patched_top=show(tok(int(patched.logit_order()[0])).label),
        )
    grid = None
    if sweep is not None:
        grid = grid_view(
            sweep, float(pa[sweep.token]), float(pb[sweep.token]), state, b.ids, a.ids, tok, sweep.runs
        )
    chosen_site, chosen_token = state.patch if state.patch is not None else (cfg.n_layer // 2, shared)
    return Comparison(
        a=sides[0],
        b=sides[1],
        layer=layer,
        head=head,
        same_length=same,
        shared=shared,
        differing=differing,
        joint=joint,
        difference=difference,
        biggest=biggest,
        patch=patch,
        grid=grid,
        grid_problem=grid_problem,
        sites=[Option(s, site_name(s), s == chosen_site) for s in range(cfg.n_layer + 1)],
        tokens=[
            Option(p + 1, f"{p + 1}: {short(tok(b.ids[p]).label, 12)}", p + 1 == chosen_token)
            for p in range(shared)
        ],
        explainer_a=link(state, "", view="attention", patch=None),
        explainer_b=link(state, "", view="attention", patch=None, text=state.text2, text2=state.text, gen=()),
    )
