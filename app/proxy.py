"""What a shared cache in front of the replicas (nginx, deploy/) needs from each answer.

- `Cache-Control`: `public` only on answers that are the same for everyone and hold nothing a student typed
  or generated: the pages, exports and API answers of the example prompts. Everything else is `private`
  (the URL carries the student's text) or `no-store` (refusals, errors, live counters).
- `X-Glassbox-Replica: <host>:<port>` when `replica_header` is on, so the proxy's routing can be seen.
"""

from __future__ import annotations

import socket

from starlette.datastructures import QueryParams
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.settings import Settings
from app.state import REFERENCE_PROMPTS

SHARED_MAX_AGE = 600  # seconds; a shared cache asks again after this, so a new release shows within it
# answers that follow from the URL alone (with the headers named in their Vary)
PURE_PATHS = ("/", "/api/trace", "/api/predict")
PURE_PREFIXES = ("/export/",)
LIVE_PATHS = ("/healthz", "/api/stats")  # counters and probes: never stored anywhere


def cache_control(method: str, path: str, query_string: bytes, status: int) -> str:
    """The Cache-Control of an answer: public for an example prompt's answers, private or no-store else."""
    if method not in ("GET", "HEAD") or status != 200 or path in LIVE_PATHS:
        return "no-store"
    if (path in PURE_PATHS or path.startswith(PURE_PREFIXES)) and example_query(query_string):
        return f"public, max-age={SHARED_MAX_AGE}"
    return "private, no-cache"


def example_query(query_string: bytes) -> bool:
    """True when the query names an example prompt (or none: the page opens on the first) and nothing a
    student added to it: no generated tokens, no button pressed, no second text."""
    query = QueryParams(query_string)  # read as the routes read it
    text = query.get("text", REFERENCE_PROMPTS[0]).replace("\r\n", "\n")
    if query.get("text2", "").strip() or query.get("patch_from", "").strip():
        return False  # a second text (view=compare, a patch's source) is the student's own
    return text in REFERENCE_PROMPTS and not query.get("gen", "").strip() and "action" not in query


class ProxyHeaders:
    """Adds Cache-Control (when the answer has none) and the replica's name to every answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        name = f"{socket.gethostname()}:{settings.port}"
        self.replica = [(b"x-glassbox-replica", name.encode())] if settings.replica_header else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    value = cache_control(
                        scope["method"], scope["path"], scope["query_string"], message["status"]
                    )
                    headers.append((b"cache-control", value.encode()))
                message["headers"] = headers + self.replica
            await send(message)

        await self.app(scope, receive, send_with_headers)
