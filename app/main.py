"""The FastAPI app factory: load the model once (lifespan), mount the CSS and htmx, add the routes.

`create_app(settings, serving)`: tests pass a ready `serving` (e.g. the tiny model) so nothing is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import docs, i18n, limits, logs
from app.loading import Serving, load_for_serving
from app.paths import STATIC_DIR, TEMPLATES_DIR
from app.proxy import ProxyHeaders
from app.refusals import wants_json
from app.server import limit_malloc_arenas
from app.service.site import Site
from app.settings import Settings
from model.sources import BrokenModel

HTMX_FILE = Path(str(files("js_lib_htmx") / "static" / "htmx" / "htmx.min.js"))
HTMX_URL = "/static/vendor/htmx.min.js"
# htmx reads its settings from this tag: no inline <style> (the CSP forbids it), no eval, swap 4xx pages
# (they carry the message for the user) and 503 (the server is busy: app/limits.py retargets it to the
# messages box).
HTMX_CONFIG = (
    '{"includeIndicatorStyles": false, "allowEval": false, "allowScriptTags": false, '
    '"historyCacheSize": 0, "defaultSettleDelay": 0, "refreshOnHistoryMiss": true, "responseHandling": ['
    '{"code": "204", "swap": false}, {"code": "[234]..", "swap": true}, {"code": "503", "swap": true}, '
    '{"code": "5..", "swap": false, "error": true}]}'
)
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


class SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every response (a plain ASGI middleware: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        static = path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                if static:  # asset URLs carry a content hash (?v=…), so they may be kept a long time
                    headers.append((b"cache-control", b"public, max-age=31536000, immutable"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def asset_version(path: Path) -> str:
    """A short content hash, so browsers cache assets until they change."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:10]


def make_templates() -> jinja2.Environment:
    """The Jinja environment: autoescape everywhere, undefined variables are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates change only with a new release: no file check on every render
        extensions=["jinja2.ext.i18n"],
    )
    # {{ _("…") }} in templates: the request's language (app/i18n.py), variables escaped, never the message
    env.install_gettext_callables(i18n._, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    css = STATIC_DIR / "style.css"
    figures_css = STATIC_DIR / "figures.css"
    motion_css = STATIC_DIR / "motion.css"
    slider_css = STATIC_DIR / "slider.css"
    present_css = STATIC_DIR / "present.css"
    interventions_css = STATIC_DIR / "interventions.css"
    picture_css = STATIC_DIR / "picture.css"
    weights_css = STATIC_DIR / "weights.css"
    env.globals.update(
        css_url=f"/static/style.css?v={asset_version(css)}",
        figures_css_url=f"/static/figures.css?v={asset_version(figures_css)}",
        motion_css_url=f"/static/motion.css?v={asset_version(motion_css)}",
        slider_css_url=f"/static/slider.css?v={asset_version(slider_css)}",
        present_css_url=f"/static/present.css?v={asset_version(present_css)}",
        interventions_css_url=f"/static/interventions.css?v={asset_version(interventions_css)}",
        picture_css_url=f"/static/picture.css?v={asset_version(picture_css)}",
        weights_css_url=f"/static/weights.css?v={asset_version(weights_css)}",
        html_lang=i18n.html_lang,
        htmx_url=f"{HTMX_URL}?v={asset_version(HTMX_FILE)}",
        htmx_config=HTMX_CONFIG,
    )
    return env


def create_app(settings: Settings | None = None, serving: Serving | None = None) -> FastAPI:
    """Build the app. With `serving` given, use that model; else load the one `settings` names at startup."""
    settings = settings or Settings.model_validate({})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if getattr(app.state, "serving", None) is None:
            app.state.serving = load_for_serving(settings)
            app.state.site = Site.make(app.state.serving, settings, app.state.templates)
        # A lecture hall at once (app/limits.py, app/logs.py): queue model runs, keep queries out of logs;
        # few malloc arenas, so the threads that draw pages do not each keep freed memory (app/server.py)
        limit_malloc_arenas()
        limits.attach(app)
        limits.tune_thread_pool(settings)
        logs.hide_queries()
        for name in app.state.templates.list_templates():  # compiled now, not by the first students
            app.state.templates.get_template(name)
        yield

    app = FastAPI(
        title="Glassbox",
        summary="See inside GPT-2: every activation of a real forward pass.",
        description="The page at / draws what GPT-2 computes; this JSON API returns the same numbers. "
        "Tensor names follow one table everywhere, e.g. `block3.attn.probs` (blocks counted from 0 here, "
        "from 1 on the page).",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # app/docs.py: Swagger UI from an installed package, not a CDN
        redoc_url=None,
    )
    # the serving parts the routes get through app/deps.py (the app's state holds them, and nothing else
    # reads them from there but the middlewares and the dependencies)
    app.state.settings = settings
    app.state.serving = serving
    app.state.templates = make_templates()
    app.state.site = Site.make(serving, settings, app.state.templates) if serving is not None else None

    from app.routes import api, export, pages, weights

    @app.get(HTMX_URL, include_in_schema=False)
    def htmx() -> FileResponse:
        """htmx, served straight from the installed django-js-lib-htmx package."""
        return FileResponse(HTMX_FILE, media_type="text/javascript")

    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(weights.router)
    app.include_router(export.router)
    docs.install(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    # gzip level 4: a page's HTML shrinks about 7x, in a third of the time of the default level 9
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=4)

    # A lecture hall at once (app/limits.py): the model run queue with its 503 answer, request limits
    # (414, 413, 429) and the finished-page cache, outside gzip; /api/stats (cache hit rates, queue, memory)
    from app.routes import stats

    app.include_router(stats.router)
    limits.install(app, settings)

    @app.exception_handler(BrokenModel)
    async def broken_model(request: Request, err: BrokenModel) -> Response:
        """Numbers GPT-2 cannot produce (NaN, infinities) are never served: a server fault, said plainly."""
        if wants_json(request.url.path):
            return JSONResponse({"detail": str(err)}, status_code=500)
        return PlainTextResponse(f"Glassbox cannot answer: {err}", status_code=500)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(ProxyHeaders, settings=settings)  # outermost: sees every answer, cached or not
    return app
