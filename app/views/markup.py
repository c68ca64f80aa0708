"""The few pieces of markup written in Python rather than by a template, because they are the slowest parts
of a page to render and are drawn often: heatmap squares (thousands per page), the numbers tables, the
overview's fan and the output panel's rows (both written once for every stop of the temperature slider),
and the overview's strips (a few thousand squares, drawn for every block, head and view a student opens).

Everything else is written by templates/. Each writer here has a template twin in tests/web/twins.html that
writes the same bytes the slow way; tests/web/test_markup.py checks that they agree, escaping cases included.
Every text that can hold what a user typed (token labels in titles, captions) is escaped here: by
`html.escape` in the squares, tables and rows, by markupsafe (as Jinja does) in the fan.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

from markupsafe import Markup
from markupsafe import escape as escape_attr

from app.i18n import _

TRACK = 200.0  # an output bar's track, in SVG units (its viewBox): the likeliest token shown fills it

if TYPE_CHECKING:  # the views' data classes, for their types only (they call these writers)
    from app.views.format import Table
    from app.views.heatmap import Pin, Squares
    from app.views.output import Bar, Output
    from app.views.overview import Fan
    from app.views.overview_marks import Strip
    from app.views.slider import Stop


def squares(cells: Squares, *, titles: bool, numbers: bool) -> str:
    """A heatmap's squares as SVG, one `<rect>` per drawn square (with its title, its number when `numbers`,
    its motion classes), written column by column from the view's lists. A square with a pinned card is a
    link to it (`#id`: the card shows while it is the page's target; out of the tab order, since the
    numbers table holds the same values for the keyboard)."""
    sx, sy, size = [str(x) for x in cells.xs], [str(y) for y in cells.ys], str(cells.size)
    rs, cs = cells.rows, cells.cols
    n = len(rs)
    ends = [f"<title>{escape(h)}</title></rect>" for h in cells.titles] if titles else ["</rect>"] * n
    classes = [f' class="{c}"' if c else "" for c in cells.classes]
    pinned = bool(n and cells.pins[0])
    svg = [
        f'<rect{"" if pinned else k} x="{sx[c]}" y="{sy[r]}" width="{size}" height="{size}" fill="{f}" '
        f'data-value="{v}">{e}'
        for r, c, f, v, e, k in zip(rs, cs, cells.fills, cells.values, ends, classes, strict=True)
    ]
    if numbers:
        half = cells.size / 2
        xs, ys = cells.xs, cells.ys
        svg = [
            square + _number(xs[c] + half, ys[r] + half, ink, text, "" if pinned else k)
            for square, r, c, ink, text, k in zip(
                svg, rs, cs, cells.inks, cells.texts, cells.classes, strict=True
            )
        ]
    if pinned:
        svg = [
            f'<a href="#{i}" tabindex="-1"{k}>{square}</a>'
            for square, i, k in zip(svg, cells.pins, classes, strict=True)
        ]
    return "".join(svg)


def _number(x: float, y: float, ink: str, text: str, motion: str = "") -> str:
    cls = f"num {motion}" if motion else "num"
    return f'<text class="{cls}" x="{x}" y="{y}" fill="{ink}">{escape(text)}</text>' if text else ""


def pin_cards(pins: Sequence[Pin]) -> Markup:
    """The cards a heatmap's squares pin, as HTML: each hidden until it is the page's target (its square was
    clicked), then fixed at the foot of the window, so opening it scrolls nothing."""
    close = escape(_("unpin"))
    out = ['<div class="pins">']
    out += [
        f'<p class="pin" id="{p.id}"><code>{escape(p.entry)}</code> = <strong>{p.value}</strong>'
        f"{f' <span>{escape(p.words)}</span>' if p.words else ''} "
        f'<a href="#_" aria-label="{close}">\u00d7</a></p>'
        for p in pins
    ]
    out.append("</div>")
    return Markup("".join(out))


def strip_squares(s: Strip) -> Markup:
    """A strip's squares: positions, colours and exact values only (numbers the views wrote; no text)."""
    y, w, h = s.y, s.w, s.h
    return Markup(
        "".join(
            f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{fill}" data-value="{value}"/>'
            for x, fill, value in s.squares
        )
    )


def heatmap_cells(squares: str, paths: list[tuple[str, str]] | None) -> Markup:
    """The squares of a heatmap: one rect each, or (compact) one path per colour level."""
    if paths is not None:
        return Markup("".join(f'<path fill="{fill}" d="{d}"/>' for fill, d in paths))
    return Markup(squares)


def table_body(t: Table) -> Markup:
    """A numbers table's head and body rows as HTML (every cell escaped)."""
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in t.columns)
    out = [f'<thead><tr><th scope="col"></th>{head}</tr></thead><tbody>']
    for r, (label, values) in enumerate(t.rows):
        sel = ' class="sel"' if r == t.selected_row else ""
        cells = "".join(f"<td>{escape(v)}</td>" for v in values)
        out.append(f'<tr{sel}><th scope="row">{escape(label)}</th>{cells}</tr>')
    out.append("</tbody>")
    return Markup("".join(out))


def fan(f: Fan, base: str = "", oob: bool = False) -> Markup:
    """The overview's fan (ribbons and next-token candidates) as an SVG of its own, one group per stop of the
    temperature slider (static/slider.css shows the checked one); `base` makes its link absolute in an
    exported file, `oob` marks it for htmx's out-of-band swap. The link is named by what it shows (the
    shown stop's candidates and their numbers) after where it goes. Escaped as Jinja escapes."""
    e = escape_attr
    swap = ' hx-swap-oob="true"' if oob else ""
    x, y, w, h = f.output_box
    out = [
        f'<svg id="fan" x="0" y="0" width="{f.width}" height="{f.height}" overflow="visible"{swap}>\n'
        f'  <a href="{e(base)}{e(f.href)}">\n'
        f'    <rect class="hit" x="{x}" y="{y}" width="{w}" height="{h}"><title>{e(f.label)}</title></rect>'
    ]
    for stop in f.stops:
        cls = f' class="at {stop.cls}"' if stop.cls else ""
        out.append(f'\n    <g{cls} data-temperature="{e(stop.temperature)}">')
        out += [
            f'<path class="ribbon" d="{e(r.d)}" fill="{e(r.fill)}" data-value="{e(r.value)}">'
            f"<title>{e(r.title)}</title></path>"
            for r in stop.ribbons
        ]
        for c in stop.candidates:
            kind = " sampled" if c.sampled else " cut" if c.cut else ""
            out.append(
                f'\n    <rect class="cand{kind}" x="{c.x}" y="{c.y}" width="6" height="{c.h}" '
                f'fill="{e(c.fill)}" data-id="{c.id}" data-prob="{e(c.prob)}"><title>{e(c.title)}</title>'
                f'</rect>\n    <text class="cand-label{kind}" x="{c.text.x}" y="{c.text.y}">'
                f"{e(c.text.text)}</text>"
            )
        if stop.others:
            o = stop.others
            out.append(f'\n    <text class="cand-label other" x="{o.x}" y="{o.y}">{e(o.text)}</text>')
        if stop.cut is not None:
            x0, x1, yc = stop.cut
            out.append(f'\n    <line class="cut-line" x1="{x0}" y1="{yc}" x2="{x1}" y2="{yc}"/>')
        out.append("</g>")
    out.append("\n  </a>\n</svg>")
    return Markup("".join(out))


def _cell(stop: Stop, b: Bar) -> str:
    """Token b's probability at one stop: its bar (with the faint mark of temperature 1), its number and
    whether it was drawn or cut."""
    kind = " sampled" if b.sampled else " cut" if not b.kept else ""
    # the chain plays column by column (templates/output_stage.html): cut at frame 2, bars at 3, draw at 4
    word, cut = escape(_("drawn")), escape(_("cut"))  # outside the f-strings, where gettext finds them
    tag = ""
    if b.sampled:
        tag = f'<strong class="drawn frame f4 drop">★<span class="word"> {word}</span></strong>'
    if not b.kept:
        tag = f'<em class="cut-tag frame f2">{cut}</em>'
    mark = min(max(b.mark - 1, 0.0), TRACK - 2)
    return (
        f'<span class="at {stop.cls}{kind}{" first-cut" if b.first_cut else ""}" data-prob="{b.prob}" '
        f'data-prob-all="{b.prob_all}"><svg class="bar" viewBox="0 0 200 12" preserveAspectRatio="none" '
        f'aria-hidden="true"><rect class="track" width="200" height="12"/><rect class="frame f3 grow" '
        f'width="{b.width}" height="12" fill="{b.fill}" data-tensor="sampling.probs"/>'
        f'<rect class="t1" x="{mark:.2f}" width="2" height="12"/></svg>'
        f'<span class="pct">{escape(b.prob_text)}</span>{tag}</span>'
    )


def _row(stops: Sequence[Stop], bars: Sequence[Bar], cls: str = "") -> str:
    """One token's row: its rank, label and logit, then its cells at each stop, stacked."""
    b = bars[0]
    scaled = "".join(
        f'<span class="at {s.cls}">{escape(c.scaled)}</span>' for s, c in zip(stops, bars, strict=True)
    )
    cells = "".join(_cell(s, c) for s, c in zip(stops, bars, strict=True))
    return (
        f'<tr{cls} data-id="{b.id}"><td class="opt">{b.rank}</td><th scope="row" class="tok">'
        f'{escape(b.label)}</th><td class="n frame f0">{escape(b.logit)}</td><td class="n opt frame f1">'
        f'<span class="stack">{scaled}</span></td><td class="p">'
        f'<span class="stack">{cells}</span></td></tr>'
    )


def stacked_rows(stops: Sequence[Stop], outputs: Sequence[Output]) -> Markup:
    """The output panel's rows of likeliest tokens, each row's cells written once per stop of the slider
    (the same tokens at every temperature); then, for each stop whose drawn token is not among them, a gap
    row and that token's row, shown only at that stop. Token labels are escaped."""
    out = []
    for k in range(len(outputs[0].bars)):
        bars = [o.bars[k] for o in outputs]
        assert len({b.id for b in bars}) == 1, "the ranking is the same at every temperature"
        out.append(_row(stops, bars))
    for stop, o in zip(stops, outputs, strict=True):
        if o.extra is not None:
            out.append(f'<tr class="gap at {stop.cls}"><td colspan="5">…</td></tr>')
            out.append(_row([stop], [o.extra], f' class="at {stop.cls}"'))
    return Markup("".join(out))
