"""A small cache of finished pages: when 300 students open the same link, the page is drawn once.
The static files (stylesheets, htmx) are kept too, already gzipped.

A page is a pure function of its URL and a few request headers (the route names them in `Vary`), so an
identical request can get the stored bytes (already gzipped) without tracing, sampling or rendering again.
Bounded by bytes, least recently used first out. Only answers that say they vary on nothing but the
headers in `KEY_HEADERS` are kept, so a route that starts to depend on something else is never served
stale; refusals (429, 503) and redirects are never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    def __init__(self, app: ASGIApp, max_bytes: int, paths: tuple[str, ...] = ("/",),
                 prefixes: tuple[str, ...] = ("/static/",), state: State | None = None) -> None:  # fmt: skip
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths
        self.prefixes = prefixes  # the stylesheets and htmx: kept gzipped instead of compressed every time
        self._items: OrderedDict[tuple[object, ...], Stored] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        if state is not None:
            state.page_cache = self  # for /api/stats

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # runs on the event loop only, so the dictionary needs no lock
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
        key = (scope["path"], scope["query_string"], gzip, scope.get("scheme"), headers.get(b"host"),
               *(headers.get(h.encode()) for h in KEY_HEADERS))  # fmt: skip
        if (stored := self._items.get(key)) is not None:
            self._items.move_to_end(key)
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
        if (
            b"set-cookie" in names
            or not vary
            or not vary <= {h.encode() for h in KEY_HEADERS} | {b"accept-encoding"}
        ):
            return
        stored = Stored(status=start["status"], headers=headers, body=body)
        if stored.nbytes > self.max_bytes // 8:
            return
        if (old := self._items.pop(key, None)) is not None:
            self._bytes -= old.nbytes
        self._items[key] = stored
        self._bytes += stored.nbytes
        while self._bytes > self.max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= dropped.nbytes
