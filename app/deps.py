"""FastAPI dependencies: what a route needs, given to it by type instead of looked up on `request.app`.

- `site`: the serving parts (app/service/site.py): model, settings, templates, caches.
- `language`: the reader's language (`lang=` in the URL, else Accept-Language; app/i18n.py).
- `parsed`: the page's controls read from the URL and checked (app/state.py), messages in that language.
- `base`: what permalinks start with for this request (app/hosts.py).
- `htmx_target`: None for a plain request, else the element htmx will swap ("" when it names none).

They are `async def`: each is a few microseconds of work, which FastAPI then does on the event loop instead
of handing every one to a thread of its own.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from app import i18n
from app.service.run import limits_of
from app.service.site import Site
from app.state import Parsed, parse_state


async def site(request: Request) -> Site:
    found: Site | None = getattr(request.app.state, "site", None)
    if found is None:
        raise HTTPException(503, "the model is still loading")
    return found


async def language(request: Request) -> str:
    return i18n.reader_language(request.query_params.get("lang", ""), request.headers.get("accept-language"))


SiteDep = Annotated[Site, Depends(site)]
Language = Annotated[str, Depends(language)]


async def parsed(request: Request, site: SiteDep, lang: Language) -> Parsed:
    with i18n.use(lang):
        return parse_state(request.query_params, limits_of(site.serving, site.settings.max_chars))


async def base(request: Request, site: SiteDep) -> str:
    server = request.scope.get("server")
    return site.address.base(request.url.scheme, request.headers.get("host"), server[0] if server else None)


async def htmx_target(request: Request) -> str | None:
    headers = request.headers
    if headers.get("HX-Request") != "true" or "HX-History-Restore-Request" in headers:
        return None
    return headers.get("HX-Target", "")


ParsedState = Annotated[Parsed, Depends(parsed)]
Base = Annotated[str, Depends(base)]
HtmxTarget = Annotated[str | None, Depends(htmx_target)]
