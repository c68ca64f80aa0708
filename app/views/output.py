"""The output panel: last-position logits -> ÷ temperature -> top-k / top-p -> softmax -> a seeded draw.

Also, in their own section because the sampling controls do not change them: the logit lens (the top guess
if GPT-2 stopped after each block) and the timeline of generated tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from markupsafe import Markup

from app.i18n import _
from app.state import State, fmt_float
from app.views import markup
from app.views.colour import SAMPLED, SELECTED, sequential
from app.views.format import num, percent, short, show
from app.views.links import Link, link
from app.views.slider import Stop, chosen, stops_for
from model import Sampling, Token, Trace, sample
from model.sampling import DEFAULT_TEMPERATURE, softmax

TOP_ROWS = 10
BAR_WIDTH = markup.TRACK  # a bar's track, in SVG units: the likeliest token shown fills it


@dataclass(frozen=True)
class Bar:
    rank: int  # place in the ranking (model/sampling.py), from 1
    id: int
    label: str
    logit: str
    scaled: str
    prob_all: float  # softmax over the whole vocabulary
    prob: float  # after top-k / top-p, renormalised; 0 when cut
    prob_text: str
    kept: bool
    sampled: bool
    width: float  # bar length in SVG units: its share of the likeliest shown at this temperature
    fill: str  # the fan's colours: the drawn token's, the others kept, none when cut
    mark: float  # the same share at temperature 1 (with the same filter): the faint mark on the track
    first_cut: bool  # the first row the filter cuts: the cut line is drawn above it


@dataclass(frozen=True)
class LensStep:
    block: int  # counted from 1
    label: str
    id: int
    prob: float
    prob_text: str
    fill: str
    width: float
    final: bool


@dataclass(frozen=True)
class Generated:
    position: int  # counted from 1 among all tokens
    id: int
    label: str
    prob: float  # the model's own probability for it (temperature 1, no filter)
    prob_text: str


@dataclass(frozen=True)
class Output:
    """The output panel at one temperature (an export, or one stop of the slider)."""

    temperature: str
    filter_text: str  # e.g. "top-k 40, then top-p 0.9" or "no filter"
    filtered: bool  # top-k or top-p is set
    bars: list[Bar]
    extra: Bar | None  # the sampled token when it is not among the top rows
    kept_count: int
    kept_mass: float
    kept_mass_text: str
    vocab: int
    sampled_id: int
    sampled_label: str
    sampled_prob_text: str
    draw_seed: int
    greedy_label: str
    last_label: str


@dataclass(frozen=True)
class Stages:
    """The output panel at every stop of the temperature slider (app/views/slider.py), for one text, filter
    and seed: the pipeline's numbers and the table's rows of each stop, written in one table whose rows
    (the same tokens at every temperature: the ranking does not depend on it) stack each stop's cells.

    A run with other probabilities (an intervention) is one more list of Outputs, one per stop."""

    stops: list[Stop]
    outputs: list[Output]  # one per stop, in the order of `stops`
    chosen: Stop  # the stop the page opens on
    filter_text: str
    filtered: bool
    vocab: int
    draw_seed: int
    greedy_label: str
    last_label: str
    rows: Markup  # the table's rows, every stop's cells stacked (`markup.stacked_rows`)


@dataclass(frozen=True)
class Lens:
    steps: list[LensStep]
    generated: list[Generated]
    undo: Link
    clear: Link


def draw(trace: Trace, state: State, *, greedy: bool = False) -> Sampling:
    """The sampling the page shows and Generate uses: seed + number of tokens generated so far."""
    return sample(
        trace.logits,
        state.temperature,
        state.top_k,
        state.top_p,
        seed=state.seed + len(state.gen),
        greedy=greedy,
        order=trace.logit_order(),
    )


def _filter_text(state: State) -> str:
    parts = []
    if state.top_k is not None:
        parts.append(f"top-k {state.top_k}")
    if state.top_p is not None:
        parts.append(f"top-p {fmt_float(state.top_p)}")
    return _(", then ").join(parts) if parts else _("no filter")


def _bar(
    rank: int, i: int, s: Sampling, logits: np.ndarray, tok: Callable[[int], Token], ref: Sampling
) -> Bar:
    """Token i's row at sampling `s`; `ref` is the same filter at temperature 1, for the faint mark."""
    p = float(s.probs[i])
    top = float(s.probs[s.order[0]])  # the likeliest is always kept (top-k >= 1; top-p keeps at least one)
    sampled = i == s.token
    return Bar(
        rank=rank,
        id=i,
        label=short(tok(i).label, 18),
        logit=num(logits[i], 4),
        scaled=num(s.scaled[i], 4),
        prob_all=float(s.probs_all[i]),
        prob=p,
        prob_text=percent(p),
        kept=p > 0,
        sampled=sampled,
        width=round(max(BAR_WIDTH * p / top, 1.0 if p > 0 else 0.0), 2),
        fill=SAMPLED if sampled else SELECTED,
        mark=round(BAR_WIDTH * float(ref.probs[i]) / float(ref.probs[ref.order[0]]), 2),
        first_cut=p == 0 and rank == s.kept_count + 1,
    )


def lens_steps(trace: Trace, tok: Callable[[int], Token]) -> list[LensStep]:
    """The top guess after each block (temperature 1, no filter)."""
    rows = trace.lens(1)
    last = len(rows) - 1
    return [
        LensStep(
            block=r.block + 1,
            label=short(tok(r.ids[0]).label, 10),
            id=r.ids[0],
            prob=r.probs[0],
            prob_text=percent(r.probs[0]),
            fill=sequential(r.probs[0]),
            width=max(60 * r.probs[0], 1.0),
            final=r.block == last,
        )
        for r in rows
    ]


def generated(
    gen: Sequence[int], step_logits: Sequence[np.ndarray], first: int, tok: Callable[[int], Token]
) -> list[Generated]:
    """Each generated token with the probability the model gave it at its step (temperature 1)."""
    out = []
    for n, (i, logits) in enumerate(zip(gen, step_logits, strict=True)):
        p = float(softmax(logits)[i])
        out.append(
            Generated(position=first + n + 1, id=i, label=show(tok(i).label), prob=p, prob_text=percent(p))
        )
    return out


def output_view(
    trace: Trace,
    state: State,
    s: Sampling,
    tok: Callable[[int], Token],
    ref: Sampling | None = None,
) -> Output:
    """Everything the output panel prints at one temperature, from the cached trace and one sampling; `ref`
    is the same filter at temperature 1 (drawn here when not given), for the faint marks."""
    logits = trace.logits
    if ref is None:
        ref = s if state.temperature == DEFAULT_TEMPERATURE else draw(trace, at(state, DEFAULT_TEMPERATURE))
    top = s.top(TOP_ROWS)
    bars = [_bar(r + 1, int(i), s, logits, tok, ref) for r, i in enumerate(top)]
    extra = None
    if s.token not in {b.id for b in bars}:
        extra = _bar(s.rank(s.token), s.token, s, logits, tok, ref)
    greedy = int(s.kept_top(1)[0])
    return Output(
        temperature=fmt_float(state.temperature),
        filter_text=_filter_text(state),
        filtered=state.top_k is not None or state.top_p is not None,
        bars=bars,
        extra=extra,
        kept_count=s.kept_count,
        kept_mass=s.kept_mass,
        kept_mass_text=percent(s.kept_mass),
        vocab=int(logits.size),
        sampled_id=s.token,
        sampled_label=show(tok(s.token).label),
        sampled_prob_text=percent(s.probs[s.token]),
        draw_seed=state.seed + len(state.gen),
        greedy_label=show(tok(greedy).label),
        last_label=show(tok(trace.ids[-1]).label),
    )


def at(state: State, temperature: float) -> State:
    """`state` at another temperature."""
    return replace(state, temperature=temperature)


@dataclass(frozen=True)
class Drawn:
    """One sampling per stop of the temperature slider, and the same filter at temperature 1."""

    stops: list[Stop]
    samplings: list[Sampling]
    ref: Sampling


def draw_stops(trace: Trace, state: State) -> Drawn:
    """Every stop of the slider for this state (its own temperature among them), each drawn by the same
    sampling code as a single temperature (`draw`)."""
    stops = stops_for(state.temperature)
    ref = draw(trace, at(state, DEFAULT_TEMPERATURE))
    samplings = [ref if t.value == DEFAULT_TEMPERATURE else draw(trace, at(state, t.value)) for t in stops]
    return Drawn(stops, samplings, ref)


def output_stages(trace: Trace, state: State, tok: Callable[[int], Token], drawn: Drawn) -> Stages:
    """The output panel at every stop of the slider."""
    outputs = [
        output_view(trace, at(state, stop.value), s, tok, drawn.ref)
        for stop, s in zip(drawn.stops, drawn.samplings, strict=True)
    ]
    first = outputs[0]
    return Stages(
        stops=drawn.stops,
        outputs=outputs,
        chosen=chosen(drawn.stops, state.temperature),
        filter_text=first.filter_text,
        filtered=first.filtered,
        vocab=first.vocab,
        draw_seed=first.draw_seed,
        greedy_label=first.greedy_label,
        last_label=first.last_label,
        rows=markup.stacked_rows(drawn.stops, outputs),
    )


def lens_view(
    trace: Trace, state: State, tok: Callable[[int], Token], step_logits: Sequence[np.ndarray] = ()
) -> Lens:
    """The logit lens and the generated tokens: neither depends on temperature, top-k, top-p or seed."""
    return Lens(
        steps=lens_steps(trace, tok),
        generated=generated(state.gen, step_logits, trace.n_tokens - len(state.gen), tok),
        undo=link(state, "lens", gen=state.gen[:-1]),
        clear=link(state, "lens", gen=()),
    )
