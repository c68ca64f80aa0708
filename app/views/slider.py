"""The temperature slider's stops: the one list the page, its stylesheet and the tests read.

The slider is a radio group (arrow keys move it, a click picks a stop, it works with JavaScript off). The
output panel and the overview's fan are drawn once for every stop (app/views/output.py, overview.py); the
stylesheet static/slider.css shows the part whose stop is checked, with one rule per stop index, written
by `css_rules` (tests/web/test_slider.py keeps the file and this list in step).

Why these stops: dividing the logits by T changes the distribution by a ratio, so neighbouring stops are
about the same ratio apart (1.2 to 1.5 times, every number one a teacher can say aloud), denser where the
picture changes most, around 1, the model's own probabilities (the default). They span the page's whole
range, 0.05 (nearly greedy) to 5 (nearly uniform for GPT-2 small). Sixteen stops keep the eight-token page
well inside its weight budget (bench/page_weight.py) and each stop a big enough target on a phone.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.state import TEMPERATURE, fmt_float

STOPS: tuple[float, ...] = (
    0.05,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.6,
    0.8,
    1.0,
    1.2,
    1.5,
    2.0,
    2.5,
    3.5,
    5.0,
)
EXTRA = len(STOPS)  # the index of a link's own temperature when it is not one of STOPS
MAX_STOPS = len(STOPS) + 1  # indices 0..EXTRA: static/slider.css has a rule for each
LABELLED = frozenset({0.05, 0.2, 0.5, 1.0, 2.0, 5.0})  # the stops whose number is printed under the track

# top-k and top-p also have sliders (their typed fields stay, for exact values and for JavaScript off); these
# go to the server, which draws the output at every temperature for the new filter
TOP_K_SLIDER = (1, 50)  # top-k 1..50 (more, or off, in the typed field); off sits at the right end
TOP_P_SLIDER = (0.05, 1.0, 0.05)  # top-p from 0.05 to 1 (1 keeps every token: off)

assert STOPS[0] == TEMPERATURE[0] and STOPS[-1] == TEMPERATURE[1] and TEMPERATURE[2] in STOPS


@dataclass(frozen=True)
class Stop:
    """One position of the slider. `index` names it in ids and classes (`s<index>`); stops are listed by
    value, so the arrow keys walk them in order."""

    index: int
    value: float
    text: str  # as the URL writes it (app/state.py fmt_float)
    labelled: bool

    @property
    def cls(self) -> str:
        return f"s{self.index}"


def stops_for(temperature: float) -> list[Stop]:
    """The slider's stops for a page at `temperature`: STOPS, plus that temperature when it is not one of
    them (a link may carry any value in range), in order of value. A standard stop keeps its index whatever
    the extra one, so a part drawn for one page matches the radios of another."""
    stops = [Stop(i, t, fmt_float(t), t in LABELLED) for i, t in enumerate(STOPS)]
    if temperature not in STOPS:
        stops.append(Stop(EXTRA, temperature, fmt_float(temperature), False))
    return sorted(stops, key=lambda s: s.value)


def chosen(stops: list[Stop], temperature: float) -> Stop:
    """The stop a page at `temperature` opens on."""
    return next(s for s in stops if s.value == temperature)


def slider_positions(top_k: int | None, top_p: float | None) -> dict[str, str]:
    """Where the top-k and top-p sliders sit for these controls (off: the right end)."""
    k = TOP_K_SLIDER[1] if top_k is None else min(top_k, TOP_K_SLIDER[1])
    lo, hi, step = TOP_P_SLIDER
    p = hi if top_p is None else min(max(round(top_p / step) * step, lo), hi)
    return {"top_k": str(k), "top_p": fmt_float(p)}


def css_rules() -> str:
    """The per-stop rules of static/slider.css: a checked radio shows the parts drawn for its stop, and
    marks the table's row of the drawn token, the rows cut and the cut line."""
    lines = []
    for i in range(MAX_STOPS):
        has, row = f"#page:has(#temperature-s{i}:checked)", f"tr:has(> td > .stack > .s{i}"
        lines += [
            f"{has} .at.s{i} {{ visibility: visible; }}",
            f"{has} tr.at.s{i} {{ display: table-row; }}",
            f"{has} {row}.sampled) > * {{ background: var(--drawn-soft); }}",
            f"{has} {row}.cut) {{ color: var(--cut-ink); }}",
            f"{has} {row}.first-cut) > * {{ border-top: 2px dashed var(--ink); }}",
        ]
    return "\n".join(lines) + "\n"
