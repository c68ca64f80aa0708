"""/docs without the internet: Swagger UI from an installed package, under the CSP of every page.

Swagger UI's files come from the PyPI package fastapi-offline (its `static/` folder: swagger-ui-bundle.js,
swagger-ui.css, favicon.png; MIT), served under /docs/. FastAPI's `get_swagger_ui_html` writes the page with
those local URLs. Its one inline script, the call that starts Swagger UI, is served as /docs/init.js instead,
because the CSP allows no inline script: the script is FastAPI's own, moved, not written here. The CSP
stays that of every page: a few decorative icons that Swagger UI's stylesheet draws from data: URLs (a
select box's arrow) are left out.
"""

from __future__ import annotations

import hashlib
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

DOCS_URL = "/docs"
SWAGGER_DIR = Path(str(files("fastapi_offline") / "static"))
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
# Swagger UI would otherwise send the schema to an online validator and show its badge
PARAMETERS = {"validatorUrl": None, "tryItOutEnabled": True}


def swagger_page(app: FastAPI) -> tuple[str, str]:
    """FastAPI's Swagger UI page with local URLs, and its starting script taken out of the page."""
    assert app.openapi_url is not None
    html = bytes(
        get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{DOCS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_URL}/favicon.png",
            swagger_ui_parameters=PARAMETERS,
        ).body
    ).decode()
    scripts = INLINE_SCRIPT.findall(html)
    if len(scripts) != 1:
        raise RuntimeError(f"FastAPI's Swagger UI page has {len(scripts)} inline scripts; /docs expects one")
    version = hashlib.sha256(scripts[0].encode()).hexdigest()[:10]
    html = INLINE_SCRIPT.sub(f'<script src="{DOCS_URL}/init.js?v={version}"></script>', html)
    return html.replace("<html>", '<html lang="en">', 1), scripts[0]


def install(app: FastAPI) -> None:
    """Add /docs, its starting script and Swagger UI's files (call once the API's routes are in)."""
    page, init = swagger_page(app)

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        """Swagger UI: the JSON API, tried from the browser."""
        return HTMLResponse(page)

    @app.get(f"{DOCS_URL}/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(init, media_type="text/javascript")

    @app.get(DOCS_URL + "/{name}", include_in_schema=False)
    def docs_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, "not found")
        return FileResponse(SWAGGER_DIR / name, media_type=ASSETS[name])
