"""Exports: every panel's figure as SVG or PNG, and the numbers behind it as CSV or JSON.

`/export/<panel>.<svg|png|csv|json>?<the page's controls>`: the same URL parameters as the page, so each
panel's download links are its permalink with another path. The work is app/service/export.py's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response

from app.deps import Base, Language, ParsedState, SiteDep
from app.png import PngUnavailable
from app.service.export import FORMATS, ExportRefused, export
from app.views.numbers import PANELS

router = APIRouter()

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
def export_file(
    file: Annotated[str, Path(description=PATH_HELP)],
    site: SiteDep,
    parsed: ParsedState,
    lang: Language,
    base: Base,
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
    try:
        made = export(site, parsed, lang, panel, fmt, tensor, base)
    except ExportRefused as err:
        raise HTTPException(400, str(err)) from err
    except PngUnavailable as err:
        raise HTTPException(
            501, f"PNG export needs cairosvg and the cairo library on the server ({err})"
        ) from err
    # `attachment`: the file is saved, never shown under the page's origin
    headers = {"Content-Disposition": f'attachment; filename="{made.filename}"', "Vary": "Accept-Language"}
    return Response(made.content, media_type=made.media_type, headers=headers)
