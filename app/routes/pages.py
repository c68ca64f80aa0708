"""The explainer page, `/`: the full page, or with htmx only the fragment that changed; and `/api`, the JSON
API described as a plain page. The work is app/service/page.py's; this module speaks HTTP."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.deps import Base, HtmxTarget, Language, ParsedState, SiteDep
from app.service import page as service
from app.service.compare import compare_page
from app.state import COMPARE

router = APIRouter()


@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
def page(site: SiteDep, parsed: ParsedState, lang: Language, target: HtmxTarget, base: Base) -> Response:
    """The explainer. Every control is a query parameter; see app/state.py."""
    if parsed.state.view == COMPARE:  # two prompts side by side: a page of its own
        answer = compare_page(site, parsed, lang, target, base)
    else:
        answer = service.page(site, parsed, lang, target, base)
    if answer.redirect is not None:
        return RedirectResponse(answer.redirect, status_code=303)
    return HTMLResponse(answer.html, status_code=answer.status, headers=answer.headers)


@router.api_route("/api", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False)
def api_docs(request: Request, site: SiteDep) -> HTMLResponse:
    """The JSON API as a plain page, from the OpenAPI schema (with no script at all, unlike /docs)."""
    schema = request.app.openapi()
    endpoints = []
    for path, methods in schema["paths"].items():
        for method, op in methods.items():
            params = [
                (
                    p["name"],
                    p.get("required", False),
                    p.get("description", ""),
                    p.get("schema", {}).get("default"),
                )
                for p in op.get("parameters", [])
            ]
            endpoints.append((method.upper(), path, op.get("summary", ""), op.get("description", ""), params))
    html = site.templates.get_template("api.html").render(endpoints=endpoints, info=schema["info"])
    return HTMLResponse(html)
