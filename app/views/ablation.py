"""Heads switched off (`ablate=`): the links that switch one off or on, the strip that lists them, and the
model's prediction with them off beside the original (before/after rows, the logit lens of both runs).

"Before" is the run with every head on (the clean run); "after" is the run with the state's heads off. Both
are read with the same sampling controls, so each row's numbers are what /api/predict gives for the text
without and with the same `ablate=`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.i18n import _
from app.state import MAX_ABLATE, State, fmt_float, heads_text
from app.views.colour import diverging, sequential
from app.views.format import MINUS, percent, short, show
from app.views.links import Link, link
from model import Sampling, Token, Trace, sample

ROWS = 8  # candidates listed before/after
BAR = 32  # the lens pairs' bars (px at 100%): two runs side by side fit the lens panel's column


def toggled(state: State, block: int, head: int) -> tuple[tuple[int, int], ...]:
    """The state's heads with (block, head) (counted from 1) switched off, or back on if it was off."""
    heads = set(state.ablate)
    heads ^= {(block, head)}
    return tuple(sorted(heads))


def toggle_link(state: State, block: int, head: int, anchor: str = "") -> Link:
    """A link switching head `head` of block `block` (from 1) off, or back on."""
    return link(state, anchor, ablate=toggled(state, block, head))


def is_off(state: State, block: int, head: int) -> bool:
    return (block, head) in state.ablate


@dataclass(frozen=True)
class OffHead:
    block: int  # from 1
    head: int
    on: Link  # switches it back on


@dataclass(frozen=True)
class Strip:
    """The list of heads switched off, shown above the panels when there are any."""

    heads: list[OffHead]
    ablate: str  # as the URL writes it
    all_on: Link
    most: int  # MAX_ABLATE
    heads_view: Link  # the table of which heads matter


def strip_view(state: State) -> Strip | None:
    if not state.ablate:
        return None
    heads = [OffHead(b, h, toggle_link(state, b, h)) for b, h in state.ablate]
    return Strip(
        heads=heads,
        ablate=heads_text(state.ablate),
        all_on=link(state, "", ablate=()),
        most=MAX_ABLATE,
        heads_view=link(state, "panel", view="heads"),
    )


@dataclass(frozen=True)
class ChangeRow:
    """One candidate's probability before and after (with the same sampling controls), and the change."""

    id: int
    label: str
    before: float
    after: float
    before_text: str
    after_text: str
    change: float
    change_text: str  # in percentage points, signed
    fill: str  # the change's colour


def points(change: float) -> str:
    """A change of probability in percentage points, signed: +12.3 pp, or 0.41 pp with a minus sign."""
    pp = change * 100
    if pp == 0:
        return "0 pp"
    size = abs(pp)
    text = f"{size:.1f}" if size >= 10 else f"{size:.2f}" if size >= 0.1 else f"{size:.2g}"
    return ("+" if pp > 0 else MINUS) + text + " pp"


def grid_points(change: float, scale: float) -> str:
    """A change of probability as a grid's square prints it: in percentage points, signed, with as many
    decimals (1 to 3) as the grid's largest change (`scale`) needs to show two digits (+12.3, -0.50, -0.007
    with a minus sign); "0" when it rounds to zero."""
    size = abs(scale) * 100
    decimals = 1 if size <= 0 else min(3, max(1, 1 - math.floor(math.log10(size))))
    text = f"{change * 100:+.{decimals}f}"
    return "0" if float(text) == 0 else text.replace("-", MINUS)


def change_rows(
    before: Sampling, after: Sampling, tok: Callable[[int], Token], n: int = ROWS
) -> list[ChangeRow]:
    """The likeliest candidates after the change, then any of the likeliest before that are not among them:
    each with its probability in both runs (after top-k / top-p, as the output panel shows)."""
    ids = [int(i) for i in after.top(n)]
    ids += [int(i) for i in before.top(min(n, 3)) if int(i) not in ids]
    scale = max(abs(float(after.probs[i]) - float(before.probs[i])) for i in ids) or 1.0
    rows = []
    for i in ids:
        b, a = float(before.probs[i]), float(after.probs[i])
        rows.append(
            ChangeRow(
                id=i,
                label=short(tok(i).label, 18),
                before=b,
                after=a,
                before_text=percent(b),
                after_text=percent(a),
                change=a - b,
                change_text=points(a - b),
                fill=diverging(a - b, scale),
            )
        )
    return rows


@dataclass(frozen=True)
class LensPair:
    """The logit lens after one block in both runs: the top guess with every head on and with some off."""

    block: int  # from 1
    before_label: str
    before_id: int
    before_prob: float
    before_text: str
    after_label: str
    after_id: int
    after_prob: float
    after_text: str
    same: bool  # the same top guess
    before_fill: str
    after_fill: str
    before_width: float
    after_width: float


def lens_pairs(clean: Trace, trace: Trace, tok: Callable[[int], Token]) -> list[LensPair]:
    """The top guess after each block, with every head on (`clean`) and with the state's heads off."""
    out = []
    for b, a in zip(clean.lens(1), trace.lens(1), strict=True):
        pb, pa = b.probs[0], a.probs[0]
        out.append(
            LensPair(
                block=b.block + 1,
                before_label=short(tok(b.ids[0]).label, 10),
                before_id=b.ids[0],
                before_prob=pb,
                before_text=percent(pb),
                after_label=short(tok(a.ids[0]).label, 10),
                after_id=a.ids[0],
                after_prob=pa,
                after_text=percent(pa),
                same=a.ids[0] == b.ids[0],
                before_fill=sequential(pb),
                after_fill=sequential(pa),
                before_width=max(BAR * pb, 1.0),
                after_width=max(BAR * pa, 1.0),
            )
        )
    return out


@dataclass(frozen=True)
class BeforeAfter:
    """The output with heads switched off beside the original: the top token of each, and every row."""

    heads: str  # for a sentence: "block 3 head 5, block 7 head 1"
    before_top: str
    after_top: str
    before_top_prob: str
    after_top_prob: str
    same_top: bool
    rows: list[ChangeRow]
    temperature: str  # the temperature both columns were drawn at


def before_after(
    before: Sampling, after: Sampling, state: State, tok: Callable[[int], Token], n: int = ROWS
) -> BeforeAfter:
    b, a = int(before.order[0]), int(after.order[0])
    return BeforeAfter(
        heads=heads_listed(state.ablate),
        before_top=show(tok(b).label),
        after_top=show(tok(a).label),
        before_top_prob=percent(before.probs[b]),
        after_top_prob=percent(after.probs[a]),
        same_top=a == b,
        rows=change_rows(before, after, tok, n),
        temperature=fmt_float(after.temperature),
    )


def heads_listed(heads: Sequence[tuple[int, int]]) -> str:
    """Heads for a sentence: “block 3 head 5, block 7 head 1”."""
    return _(", ").join(_("block {block} head {head}").format(block=b, head=h) for b, h in heads)


@dataclass(frozen=True)
class HeadSwitch:
    """A link switching one head of the open block off, or back on (the attention panel, the all-heads
    grid)."""

    block: int  # from 1
    head: int
    off: bool
    link: Link


def head_switches(state: State, n_head: int) -> list[HeadSwitch]:
    """One switch per head of the open block (`state.layer`), in head order."""
    b = state.layer
    return [
        HeadSwitch(b, h, is_off(state, b, h), toggle_link(state, b, h, "panel")) for h in range(1, n_head + 1)
    ]


@dataclass(frozen=True)
class OverviewChange:
    """The overview's line about heads switched off: the likeliest next tokens with the heads off, each
    beside its probability with every head on, and the change."""

    heads: str  # for a sentence: "block 1 head 2, block 2 head 3"
    rows: list[ChangeRow]


def overview_change(clean: Trace, trace: Trace, state: State, tok: Callable[[int], Token]) -> OverviewChange:
    """The three likeliest next tokens with the heads off, and each one's probability with every head on
    (temperature 1, no filter: the overview is drawn once for every sampling, so it shows the model's own
    probabilities; the output panel shows them with the sampling controls)."""
    before = sample(clean.logits, 1.0, None, None, order=clean.logit_order())
    after = sample(trace.logits, 1.0, None, None, order=trace.logit_order())
    rows = change_rows(before, after, tok, n=3)[:3]
    return OverviewChange(heads=heads_listed(state.ablate), rows=rows)
