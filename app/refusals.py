"""What a refused request gets: a short page for people (or just its message, for htmx), JSON for the API."""

from __future__ import annotations

import random
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2_fragments import render_block

from app import i18n
from app.i18n import N_, _

# English here and in JSON answers; a page for people says it in the reader's language (translations/).
BUSY_MESSAGE = N_(
    "Glassbox is busy: many people are running the model right now. "
    "Please try again in a few seconds; your text is kept in the address."
)
URL_MESSAGE = N_(
    "This address is {size} bytes long; this server takes at most {most}. "
    "Shorten the text (a character outside English can take up to 12 bytes in an address)."
)
BODY_MESSAGE = N_(
    "The request body is larger than {most} bytes; Glassbox takes its input from the address only."
)
RATE_MESSAGE = N_("Too many requests from your address in a short time. Please wait a moment and try again.")


def query_of(scope: MutableMapping[str, Any]) -> str:
    """The query string of an ASGI request, as text."""
    return bytes(scope.get("query_string", b"")).decode("latin-1")


def reader_language(headers: dict[str, str], query: str = "") -> str:
    """`lang=` of the address asked for, else of the page an htmx request came from, else the browser's."""
    current = urlsplit(headers.get("hx-current-url", "")).query
    asked = parse_qs(query).get("lang", [""])[0] or parse_qs(current).get("lang", [""])[0]
    return i18n.reader_language(asked, headers.get("accept-language"))


def wants_json(path: str) -> bool:
    """JSON answers for the API and the probes; HTML pages for everything else."""
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json")


def refusal(
    app: FastAPI,
    path: str,
    headers: dict[str, str],
    status: int,
    message: str,
    retry_after: int | None = None,
    query: str = "",
    **params: object,
) -> Response:
    """The answer to a refused request: `{"detail": message}` for the API, a short page for people.

    An htmx request gets only the messages box, retargeted there (HX-Retarget), so the page the student
    has stays put and says what happened.
    """
    extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if wants_json(path):
        return JSONResponse({"detail": message.format(**params)}, status_code=status, headers=extra)
    env = app.state.templates
    htmx = headers.get("hx-request") == "true"
    with i18n.use(reader_language(headers, query)):
        context = {"status": status, "message": _(message).format(**params), "retry_after": retry_after}
        if htmx:
            html = render_block(env, "busy.html", "messages", context)
        else:
            html = env.get_template("busy.html").render(context)
    if htmx:
        extra.update({"HX-Retarget": "#messages", "HX-Reswap": "outerHTML"})
    elif retry_after is not None:  # the browser reloads the page by itself, students not all at once
        extra["Refresh"] = str(retry_after + random.randint(0, retry_after))
    return HTMLResponse(html, status_code=status, headers=extra)
