"""Exports: every panel's figure as SVG or PNG, and the numbers behind it as CSV or JSON.

`/export/<panel>.<svg|png|csv|json>?<the page's controls>`: the same URL parameters as the page, so each
panel's download links are its permalink with another path. The SVG is drawn by the page's own macros.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response

from app import i18n
from app.loading import Serving
from app.paths import STATIC_DIR
from app.png import PngUnavailable, needs_wide_font, png_css, png_scale, render_png
from app.routes.pages import Run, language_of, limits_of, run
from app.state import State, parse_state
from app.views.attention import attention_view
from app.views.embedding import embedding_view
from app.views.figures import panel_figure
from app.views.mlp import mlp_view
from app.views.numbers import PANELS, panel_tables, table_names, to_csv, to_json
from app.views.output import draw, lens_view, output_view
from app.views.overview import fan_view, layout, overview_view
from app.views.residual import residual_view
from app.views.tokens import chip_groups, chips

router = APIRouter()

FORMATS = {
    "svg": "image/svg+xml",
    "png": "image/png",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
DETAIL_PANELS: dict[str, Callable[..., Any]] = {
    "embedding": embedding_view,
    "attention": attention_view,
    "mlp": mlp_view,
    "residual": residual_view,
}
# characters XML 1.0 does not allow, even escaped: a URL's text may hold them
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


@cache
def figures_css() -> str:
    return (STATIC_DIR / "figures.css").read_text(encoding="utf-8")


def filename(panel: str, state: State, fmt: str, tensor: str | None) -> str:
    """e.g. glassbox-attention-block2-head3-probs.svg: says what the file shows."""
    parts = ["glassbox", panel]
    if panel in ("attention", "mlp", "residual", "overview"):
        parts.append(f"block{state.layer}")
    if panel in ("attention", "overview"):
        parts.append(f"head{state.head}")
    if panel == "attention":
        parts.append(state.step)
    if tensor:
        parts.append(re.sub(r"[^A-Za-z0-9.]+", "_", tensor).strip("_"))
    return "-".join(parts) + f".{fmt}"


def _views(request: Request, panel: str, r: Run) -> dict[str, Any]:
    """The view-models `panel`'s figure draws."""
    assert r.trace is not None
    serving: Serving = request.app.state.serving
    tok = serving.gpt2.tokenizer.token
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
    else:
        views["panel"] = DETAIL_PANELS[panel](r.trace, state, tok)
    return views


def _subtitle(request: Request, r: Run) -> str:
    """The model and the text (with any generated tokens), on one line."""
    gpt2 = request.app.state.serving.gpt2
    text = " ".join(gpt2.tokenizer.decode([t.id for t in r.tokens]).split())
    text = text if len(text) <= 100 else text[:99] + "…"
    return _NOT_XML.sub("", f"{gpt2.name} · “{text}”")


PATH_HELP = (
    f"panel.format, e.g. attention.svg; panels: {', '.join(PANELS)}; formats: {', '.join(FORMATS)}. "
    "The other query parameters are the page's controls (text, layer, head, step, token, temperature, top_k, "
    "top_p, seed, gen, lang)."
)


@router.get(
    "/export/{file}",
    tags=["export"],
    summary="Download a panel's figure (SVG, PNG) or its numbers (CSV, JSON)",
    responses={200: {"content": {t: {} for t in FORMATS.values()}}},
)
def export(
    request: Request,
    file: Annotated[str, Path(description=PATH_HELP)],
    tensor: Annotated[
        str | None, Query(description="CSV only: which of the panel's tensors (default: the first)")
    ] = None,
) -> Response:
    """The figure of one panel exactly as the page draws it, or the numbers behind it."""
    panel, _dot, fmt = file.rpartition(".")
    if panel not in PANELS or fmt not in FORMATS:
        raise HTTPException(
            404,
            f"no export called {file[:60]!r}: ask for /export/PANEL.FORMAT with PANEL one of "
            f"{', '.join(PANELS)} and FORMAT one of {', '.join(FORMATS)}",
        )
    app = request.app
    serving: Serving = app.state.serving
    lang = language_of(request)
    with i18n.use(lang):
        parsed = parse_state(request.query_params, limits_of(serving, app.state.settings.max_chars))
        parsed.action = None  # a link's button press is not replayed by a download
        r = run(serving, parsed, app.state.settings.max_tokens)
        if r.errors or r.trace is None:
            raise HTTPException(400, " ".join(r.errors) or "no text to trace")
        if fmt in ("csv", "json"):
            content = _numbers(request, panel, fmt, r, tensor)
        else:
            content = _figure(request, panel, fmt, r, lang)
    name = filename(panel, r.state, fmt, tensor if fmt == "csv" else None)
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Vary": "Accept-Language"}
    # `attachment`: the file is saved, never shown under the page's origin
    return Response(content, media_type=FORMATS[fmt], headers=headers)


def _numbers(request: Request, panel: str, fmt: str, r: Run, tensor: str | None) -> bytes:
    """The panel's tables: all of them as JSON, one (the first, or `tensor`) as CSV."""
    assert r.trace is not None
    serving: Serving = request.app.state.serving
    state = r.state
    tables = panel_tables(panel, r.trace, state, draw(r.trace, state), serving.gpt2.tokenizer.token)
    if fmt == "csv":
        names = table_names(panel, state, r.trace.config)
        if tensor is not None and tensor not in names:
            raise HTTPException(
                400, f"the {panel} panel has no table {tensor[:60]!r}; it has {', '.join(names)}"
            )
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


def _figure(request: Request, panel: str, fmt: str, r: Run, lang: str) -> bytes:
    """The panel's figure as a standalone SVG document, or that document rendered to PNG."""
    fig = panel_figure(panel, _views(request, panel, r), _subtitle(request, r))
    css = figures_css()
    if fmt == "png":
        css = png_css(css, wide=lang != "en" or needs_wide_font(r.state.text, fig.subtitle))
    base = str(request.base_url).rstrip("/")
    svg = request.app.state.templates.get_template("export.svg").render(
        fig=fig, css=css, base=base, permalink=base + r.state.url()
    )
    if fmt == "svg":
        return str(svg).encode("utf-8")
    try:
        return render_png(svg, png_scale(fig.width, fig.height))
    except PngUnavailable as err:
        raise HTTPException(
            501, f"PNG export needs cairosvg and the cairo library on the server ({err})"
        ) from err
