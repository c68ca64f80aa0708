"""The few pieces of markup written in Python rather than by a template, because they are the slowest parts
of a page to render and are drawn often: heatmap squares (thousands per page), the numbers tables, the
overview's fan and the output panel's rows (redrawn on every slider move).

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

if TYPE_CHECKING:  # the views' data classes, for their types only (they call these writers)
    from app.views.format import Table
    from app.views.heatmap import Pin, Squares
    from app.views.output import Bar
    from app.views.overview import Fan


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
    """The overview's fan (ribbons and next-token candidates) as an SVG of its own; `base` makes its link
    absolute in an exported file, `oob` marks it for htmx's out-of-band swap. Escaped as Jinja escapes."""
    e = escape_attr
    swap = ' hx-swap-oob="true"' if oob else ""
    # the link's name starts with what it shows (the candidates' labels), then says where it goes
    shown = [c.text.text for c in f.candidates] + ([f.others.text] if f.others else [])
    label = e(" ".join([*shown, "·", _("the next-token probabilities: open the output panel")]))
    x, y, w, h = f.output_box
    out = [
        f'<svg id="fan" x="0" y="0" width="{f.width}" height="{f.height}" overflow="visible"{swap}>\n'
        f'  <a href="{e(base)}{e(f.output_link.href)}" aria-label="{label}">\n'
        f'    <rect class="hit" x="{x}" y="{y}" width="{w}" height="{h}"/>\n    '
    ]
    out += [
        f'<path class="ribbon" d="{e(r.d)}" fill="{e(r.fill)}" data-value="{e(r.value)}">'
        f"<title>{e(r.title)}</title></path>"
        for r in f.ribbons
    ]
    for c in f.candidates:
        sampled = " sampled" if c.sampled else ""
        out.append(
            f'\n    <rect class="cand{sampled}" x="{c.x}" y="{c.y}" width="6" height="{c.h}" '
            f'fill="{e(c.fill)}" data-id="{c.id}" data-prob="{e(c.prob)}"><title>{e(c.title)}</title>'
            f'</rect>\n    <text class="cand-label{sampled}" x="{c.text.x}" y="{c.text.y}">'
            f"{e(c.text.text)}</text>"
        )
    if f.others:
        o = f.others
        out.append(f'\n    <text class="cand-label other" x="{o.x}" y="{o.y}">{e(o.text)}</text>')
    out.append("\n  </a>\n</svg>")
    return Markup("".join(out))


def bar_rows(bars: Sequence[Bar], extra: Bar | None) -> Markup:
    """The output panel's rows of likeliest tokens as HTML; `extra` (the drawn token when it is not among
    them) follows a gap row. Token labels are escaped."""
    drawn = f' <strong class="drawn">{escape(_("★ drawn"))}</strong>'
    cut = f" <em>{escape(_('cut'))}</em>"
    out = []
    for b in [*bars, extra] if extra is not None else bars:
        if b is extra:
            out.append('<tr class="gap"><td colspan="5">…</td></tr>')
        out.append(
            f'<tr class="{"sampled" if b.sampled else ""}{"" if b.kept else " cut"}" data-id="{b.id}" '
            f'data-prob="{b.prob}" data-prob-all="{b.prob_all}"><td class="opt">{b.rank}</td>'
            f'<th scope="row" class="tok">{escape(b.label)}</th><td class="n">{escape(b.logit)}</td>'
            f'<td class="n opt">{escape(b.scaled)}</td><td class="p"><svg class="bar" viewBox="0 0 200 12" '
            'preserveAspectRatio="none" aria-hidden="true"><rect class="track" width="200" height="12"/>'
            f'<rect width="{b.width}" height="12" fill="{b.fill}" data-tensor="sampling.probs"/></svg>'
            f"<span>{escape(b.prob_text)}</span>"
            f"{drawn if b.sampled else ''}{'' if b.kept else cut}</td></tr>"
        )
    return Markup("".join(out))
