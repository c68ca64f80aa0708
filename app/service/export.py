"""Checked state -> trace -> one panel's figure (SVG, PNG) or its numbers (CSV, JSON), as bytes.

The same run as the page (app/service/run.py) and the same view-models and figure macros, so a downloaded
figure is the one on the page. Renders are kept (by state and language) in a BytesCache: a class downloading
the same figure renders it once. Exports wait in a lane of their own (app/admission.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from app import i18n
from app.i18n import _
from app.paths import STATIC_DIR
from app.png import export_scale, needs_wide_font, png_css, render_png
from app.service.intervene import add_sweep
from app.service.page import detail_panel
from app.service.run import Run, run
from app.service.site import Site
from app.state import Parsed, State
from app.views.figures import panel_figure
from app.views.heads import sweep_table
from app.views.numbers import clean_logits_table, panel_tables, table_names, to_csv, to_json
from app.views.output import draw, lens_view, output_view
from app.views.overview import fan_view, layout, overview_view
from app.views.tokens import chip_groups, chips
from app.views.weight_numbers import weight_data_tables
from app.views.weights import WEIGHT_VIEWS, weights_view

FORMATS = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
# characters XML 1.0 does not allow, even escaped: a URL's text may hold them
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


class ExportRefused(ValueError):
    """The export cannot be made from this URL: a 400 with this sentence."""


@dataclass(frozen=True)
class Export:
    content: bytes
    filename: str
    media_type: str


@cache
def figures_css() -> str:
    return (STATIC_DIR / "figures.css").read_text(encoding="utf-8")


def filename(panel: str, state: State, fmt: str, tensor: str | None) -> str:
    """e.g. glassbox-attention-block2-head3-probs.svg: says what the file shows."""
    parts = ["glassbox", panel]
    if panel == "weights":
        parts.append(state.view)
    shown = state.view if panel == "weights" else panel  # the weights name the panel they are behind
    if shown in ("attention", "mlp", "residual", "overview", "kv"):
        parts.append(f"block{state.layer}")
    if shown in ("attention", "overview", "kv"):
        parts.append(f"head{state.head}")
    if shown == "attention":
        parts.append(state.step)
    if tensor:
        parts.append(re.sub(r"[^A-Za-z0-9.]+", "_", tensor).strip("_"))
    return "-".join(parts) + f".{fmt}"


def export(
    site: Site, parsed: Parsed, lang: str, panel: str, fmt: str, tensor: str | None, base: str
) -> Export:
    """The export `panel`.`fmt` of a checked state, in `lang`; ExportRefused when the URL cannot give one.
    Kept in the site's export cache: the same link asked again (a class downloading one figure) is sent
    from there, and requests asking at once make it once."""
    parsed.action = None  # a link's button press is not replayed by a download
    if site.exports is None or parsed.messages or not parsed.text_ok:
        return _export(site, parsed, lang, panel, fmt, tensor, base)
    key = (panel, fmt, tensor, lang, base, parsed.state)
    made: Export = site.exports.get(key, lambda: _export(site, parsed, lang, panel, fmt, tensor, base))
    return made


def _export(
    site: Site, parsed: Parsed, lang: str, panel: str, fmt: str, tensor: str | None, base: str
) -> Export:
    with i18n.use(lang):
        r = run(site.serving, parsed, site.settings.max_tokens, site.settings.max_trace_mb)
        if r.errors or r.trace is None:
            raise ExportRefused(" ".join(r.errors) or "no text to trace")
        if panel == "heads":
            add_sweep(site.serving.gpt2, site.sweeps, r, panel)
            if r.sweep is None:
                raise ExportRefused(r.sweep_problem)
        if panel == "weights" and r.state.view not in WEIGHT_VIEWS:
            raise ExportRefused(
                f"the {r.state.view} panel shows no weights; they are behind "
                f"{', '.join(WEIGHT_VIEWS)} (view=…)"
            )
        if fmt in ("csv", "json"):
            content = numbers(site, panel, fmt, r, tensor)
        else:
            content = figure(site, panel, fmt, r, lang, base)
    name = filename(panel, r.state, fmt, tensor if fmt == "csv" else None)
    return Export(content=content, filename=name, media_type=FORMATS[fmt])


def views_of(site: Site, panel: str, r: Run) -> dict[str, Any]:
    """The view-models `panel`'s figure draws."""
    assert r.trace is not None
    tok = site.serving.gpt2.tokenizer.token
    state = r.state
    views: dict[str, Any] = {}
    if panel == "overview":
        fan = fan_view(state, draw(r.trace, state), tok, layout(r.trace.n_tokens))
        views["overview"] = overview_view(r.trace, state, fan, tok)
    elif panel == "tokens":
        views["chip_groups"] = chip_groups(r.tokens, chips(r.tokens, state, len(state.gen)))
    elif panel == "output":
        views["output"] = output_view(r.trace, state, draw(r.trace, state), tok)
    elif panel == "lens":
        views["lens"] = lens_view(r.trace, state, tok, r.step_logits)
    elif panel == "weights":
        views["weights"] = weights_view(
            r.trace, replace(state, weights=True), site.serving.gpt2.weights_on_disk, tok
        )
    else:
        views["panel"] = detail_panel(r, state, tok, panel)
    return views


def subtitle(site: Site, r: Run) -> str:
    """The model and the text (with any generated tokens), on one line."""
    gpt2 = site.serving.gpt2
    text = " ".join(gpt2.tokenizer.decode([t.id for t in r.tokens]).split())
    text = text if len(text) <= 100 else text[:99] + "…"
    line = f"{gpt2.name} · “{text}”"
    if r.state.ablate:  # the figure is of the model with these heads switched off
        heads = ", ".join(f"{b}.{h}" for b, h in r.state.ablate)
        line += " · " + _("heads {heads} switched off").format(heads=heads)
    return _NOT_XML.sub("", line)


def numbers(site: Site, panel: str, fmt: str, r: Run, tensor: str | None) -> bytes:
    """The panel's tables: all of them as JSON, one (the first, or `tensor`) as CSV."""
    assert r.trace is not None
    serving = site.serving
    state = r.state
    tok = serving.gpt2.tokenizer.token
    if panel == "heads":
        assert r.sweep is not None
        tables = [sweep_table(r.sweep, tok)]
    elif panel == "weights":
        tables = weight_data_tables(r.trace, state, serving.gpt2.weights_on_disk, tok)
    else:
        tables = panel_tables(panel, r.trace, state, draw(r.trace, state), tok)
    if panel == "output" and r.clean is not None:  # heads switched off: the run with all on, too
        tables.append(clean_logits_table(r.clean, draw(r.clean, state), tok))
    if fmt == "csv":
        names = table_names(panel, state, r.trace.config)
        if tensor is not None and tensor not in names:
            raise ExportRefused(f"the {panel} panel has no table {tensor[:60]!r}; it has {', '.join(names)}")
        return to_csv(tables[names.index(tensor)] if tensor else tables[0]).encode("utf-8")
    body = {
        "panel": panel,
        "model": serving.gpt2.name,
        "trained": serving.trained,
        "text": state.text,
        "tokens": [
            {"position": i + 1, "id": t.id, "text": t.text, "label": t.label} for i, t in enumerate(r.tokens)
        ],
        "controls": state.params(),
        "tables": [to_json(t) for t in tables],
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")


def figure(site: Site, panel: str, fmt: str, r: Run, lang: str, base: str) -> bytes:
    """The panel's figure as a standalone SVG document, or that document rendered to PNG (PngUnavailable
    when cairo is missing)."""
    fig = panel_figure(panel, views_of(site, panel, r), subtitle(site, r))
    css = figures_css()
    if fmt == "png":
        css = png_css(css, wide=lang != "en" or needs_wide_font(r.state.text, fig.subtitle))
    svg = site.templates.get_template("export.svg").render(
        fig=fig, css=css, base=base, permalink=base + r.state.url()
    )
    if fmt == "svg":
        return str(svg).encode("utf-8")
    return render_png(svg, export_scale(fig.width, fig.height))
