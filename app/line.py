"""The line at the counter: at most `concurrency` requests are worked on at once; the others wait in turn.

Drawing a page is Python work, and Python runs one thread at a time (the GIL). Forty threads drawing forty
pages at once finish no sooner than four would, and they starve the event loop that answers everyone else
(static files, cached pages, the next connection). So requests that draw or compute wait here, in order,
without holding a thread; past `queue_size` waiting, or after `queue_timeout` seconds, they get HTTP 503
with Retry-After. Static files, probes and /api/stats never wait.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.refusals import BUSY_MESSAGE, query_of, refusal
from app.settings import Settings

NO_WAIT = ("/static/", "/healthz", "/api/stats")


class WorkLine:
    """ASGI middleware: a first-come, first-served line in front of the routes that do the work."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, settings: Settings) -> None:
        self.app = app
        self.fastapi = fastapi
        self.concurrency = settings.concurrency
        self.queue_size = settings.queue_size
        self.timeout = settings.queue_timeout
        self.busy = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.refused = 0
        self.mean_s = 0.05  # moving average of one request's work, for Retry-After
        fastapi.state.work_line = self

    def retry_after(self) -> int:
        return max(1, min(60, math.ceil((len(self.waiting) + 1) * self.mean_s / self.concurrency)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(NO_WAIT):
            await self.app(scope, receive, send)
            return
        if self.busy >= self.concurrency:  # wait for a turn; the event loop is one thread: no lock
            if len(self.waiting) >= self.queue_size:
                await self._refuse(scope, receive, send)
                return
            turn = asyncio.get_running_loop().create_future()
            self.waiting.append(turn)
            try:
                await asyncio.wait_for(asyncio.shield(turn), self.timeout)
            except asyncio.TimeoutError:
                self._leave(turn)
                await self._refuse(scope, receive, send)
                return
            except asyncio.CancelledError:  # the client went away while waiting
                self._leave(turn)
                raise
        else:
            self.busy += 1
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.mean_s = 0.9 * self.mean_s + 0.1 * (time.perf_counter() - start)
            self._next()

    def _leave(self, turn: asyncio.Future[None]) -> None:
        """Step out of the line; a turn that came just as we gave up goes to the next one."""
        if turn.done():
            self._next()
        else:
            self.waiting.remove(turn)
            turn.cancel()

    def _next(self) -> None:
        """Hand this turn to the first one waiting, or free it."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on: `busy` stays the same
                return
        self.busy -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.refused += 1
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        retry = self.retry_after()
        answer = refusal(self.fastapi, scope["path"], headers, 503, BUSY_MESSAGE, retry, query_of(scope))
        await answer(scope, receive, send)
