"""What a refused request gets: a short page for people (or just its message, for htmx), JSON for the API."""

from __future__ import annotations

import random

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2_fragments import render_block

BUSY_MESSAGE = (
    "Glassbox is busy: many people are running the model right now. "
    "Please try again in a few seconds; your text is kept in the address."
)


def url_message(size: int, most: int) -> str:
    return (
        f"This address is {size} bytes long; this server takes at most {most}. "
        "Shorten the text (a character outside English can take up to 12 bytes in an address)."
    )


def body_message(most: int) -> str:
    return f"The request body is larger than {most} bytes; Glassbox takes its input from the address only."


RATE_MESSAGE = "Too many requests from your address in a short time. Please wait a moment and try again."


def wants_json(path: str) -> bool:
    """JSON answers for the API and the probes; HTML pages for everything else."""
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json")


def refusal(app: FastAPI, path: str, headers: dict[str, str], status: int, message: str,
            retry_after: int | None = None) -> Response:  # fmt: skip
    """The answer to a refused request: `{"detail": message}` for the API, a short page for people.

    An htmx request gets only the messages box, retargeted there (HX-Retarget), so the page the student
    has stays put and says what happened.
    """
    extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if wants_json(path):
        return JSONResponse({"detail": message}, status_code=status, headers=extra)
    env = app.state.templates
    context = {"status": status, "message": message, "retry_after": retry_after}
    if headers.get("hx-request") == "true":
        html = render_block(env, "busy.html", "messages", context)
        extra.update({"HX-Retarget": "#messages", "HX-Reswap": "outerHTML"})
    else:
        html = env.get_template("busy.html").render(context)
        if retry_after is not None:  # the browser reloads the page by itself, students not all at once
            extra["Refresh"] = str(retry_after + random.randint(0, retry_after))
    return HTMLResponse(html, status_code=status, headers=extra)
