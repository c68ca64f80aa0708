"""A small cache of finished pages: when 300 students open the same link, the page is drawn once.
The static files (stylesheets, htmx) are kept too, already gzipped.

A page is a pure function of its URL and a few request headers (the route names them in `Vary`), so an
identical request can get the stored bytes (already gzipped) without tracing, sampling or rendering again.
Kept in the one cache class (model/cache.py's BytesCache: bounded by bytes, least recently used first out,
an answer bigger than an eighth of the budget not kept). Only answers that say they vary on nothing but the
headers in `KEY_HEADERS` are kept, so a route that starts to depend on something else is never served
stale; refusals (429, 503) and redirects are never kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.cache import BytesCache

KEY_HEADERS = ("hx-request", "hx-target", "hx-history-restore-request", "accept-language")
KEPT_STATUS = (200, 400)  # a page, or a page with a message about the input: both follow from the URL


@dataclass(frozen=True)
class Stored:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def nbytes(self) -> int:
        return len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 200


class PageCache:
    """ASGI middleware: stored answers for repeated GETs of `paths`, up to `max_bytes` in all."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        paths: tuple[str, ...] = ("/",),
        prefixes: tuple[str, ...] = ("/static/",),
        state: State | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.prefixes = prefixes  # the stylesheets and htmx: kept gzipped instead of compressed every time
        # answers are stored once complete, on the event loop: the cache's lock is never contended for long
        self.store: BytesCache[Stored] = BytesCache(
            max_bytes, size=lambda s: s.nbytes, largest=max_bytes // 8
        )
        self.hits = 0
        self.misses = 0
        if state is not None:
            state.page_cache = self  # for /api/stats

    @property
    def max_bytes(self) -> int:
        return self.store.max_bytes

    @property
    def nbytes(self) -> int:
        return self.store.nbytes

    def __len__(self) -> int:
        return len(self.store)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not (scope["path"] in self.paths or scope["path"].startswith(self.prefixes))
        ):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope["headers"]}
        gzip = b"gzip" in headers.get(b"accept-encoding", b"")
        # the page's own address (its permalinks) comes from the scheme and the Host header
        where = (scope["path"], scope["query_string"], gzip, scope.get("scheme"), headers.get(b"host"))
        key = where + tuple(headers.get(h.encode()) for h in KEY_HEADERS)
        if (stored := self.store.peek(key)) is not None:
            self.hits += 1
            await send({"type": "http.response.start", "status": stored.status, "headers": stored.headers})
            await send({"type": "http.response.body", "body": stored.body})
            return
        self.misses += 1
        start: Message = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":  # copied: outer middleware add their headers
                start = {**message, "headers": list(message.get("headers", []))}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._store(key, start, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, keep)

    def _store(self, key: tuple[object, ...], start: Message, body: bytes) -> None:
        if start.get("status") not in KEPT_STATUS:
            return
        headers = list(start.get("headers", []))
        names = {k.lower() for k, _ in headers}
        vary = {v.strip().lower() for k, value in headers if k.lower() == b"vary" for v in value.split(b",")}
        no_store = any(k.lower() == b"cache-control" and b"no-store" in v for k, v in headers)
        if (
            b"set-cookie" in names
            or no_store
            or not vary
            or not vary <= {h.encode() for h in KEY_HEADERS} | {b"accept-encoding"}
        ):
            return
        self.store.put(key, Stored(status=start["status"], headers=headers, body=body))
