"""Admission: lanes of requests, each first come first served, with a bounded line and a 503 past it.

Drawing a page is Python work, and Python runs one thread at a time (the GIL). Forty threads drawing forty
pages at once finish no sooner than four would, and they starve the event loop that answers everyone else
(static files, cached pages, the next connection). So requests that draw or compute wait in a `Lane`, in
order, without holding a thread; past its `queue_size` waiting, or after `timeout` seconds, they get HTTP
503 with Retry-After. One class, three lanes (`Admission` sends each request to its own):

- `line`: every request that draws or computes, at most `concurrency` at once;
- `heavy`: the biggest answers (/api/trace, up to millions of numbers), one at a time, before the line;
- `exports`: figures and tables to download (PNG rendering takes seconds of CPU), `export_concurrency` at
  once, before the line, so exports queue among themselves and pages keep the line's other turns;
- `sweeps`: the views that may sweep many model runs (`view=heads`, `view=compare` and their exports),
  one more at once than `sweep_concurrency` (one computing, one answered from the sweeps kept), before the
  line: a class opening new sweeps waits here, not in the line every page needs;
- `settle`: the temperature slider's one request once it rests (`HX-Target: share`: the permalink, the
  share box and the download links; every stop's picture is already on the page), SETTLE_CONCURRENCY at
  once *instead of* the line: a few milliseconds of work that would otherwise wait behind whole pages.

Static files, probes and /api/stats never wait. Model runs have their own bounded queue behind these
(app/limits.py's RunQueue, the model's Gate): a lane bounds requests, the run queue bounds model runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import parse_qs

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.refusals import BUSY_MESSAGE, query_of, refusal
from app.settings import Settings

log = logging.getLogger(__name__)

NO_WAIT = ("/static/", "/healthz", "/api/stats")
HEAVY_PATHS = ("/api/trace",)
EXPORT_PREFIX = "/export/"
SWEEP_VIEWS = ("heads", "compare")  # view= values whose pages may sweep (app/service/intervene.py)
SWEEP_EXPORTS = ("/export/heads.",)
SETTLE_TARGET = b"share"  # htmx's target when the temperature slider rests (templates/controls.html)
SETTLE_CONCURRENCY = 2
RECHECK = 0.25  # seconds: a waiting request also looks again this often (a turn may be freed from elsewhere)
# seconds a client may leave a big answer (heavy, export) unread before it is dropped: its turn in a lane
# of one or two must not be held by a reader that never reads
STALL = 30.0


class Full(Exception):
    """No turn: the lane's line is full, or the wait was too long."""


class Stalled(Exception):
    """The client stopped reading a big answer."""


class Lane:
    """At most `concurrency` requests at once, `queue_size` more waiting in order, each for at most `timeout`
    seconds. Used on the event loop only: its counters need no lock."""

    def __init__(
        self, name: str, concurrency: int, queue_size: int, timeout: float, retry_after: int | None = None
    ) -> None:
        self.name = name
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.timeout = timeout
        self.fixed_retry = retry_after
        self.busy = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.refused = 0
        self.mean_s = 0.05  # moving average of one request's work, for Retry-After

    def retry_after(self) -> int:
        if self.fixed_retry is not None:
            return self.fixed_retry
        return max(1, min(60, math.ceil((len(self.waiting) + 1) * self.mean_s / self.concurrency)))

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold a turn for the body of the `async with`; raise Full when there is none to be had."""
        if self.busy >= self.concurrency or self.waiting:
            if len(self.waiting) >= self.queue_size:
                self.refused += 1
                raise Full(self.name)
            await self._wait()  # returns holding the turn
        else:
            self.busy += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.mean_s = 0.9 * self.mean_s + 0.1 * (time.perf_counter() - start)
            self.busy -= 1
            self._next()

    async def _wait(self) -> None:
        turn = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        deadline = time.monotonic() + self.timeout
        try:
            while not turn.done():
                if self.busy < self.concurrency and self.waiting[0] is turn:
                    break  # freed without a hand-over (e.g. by a test holding the lane)
                left = deadline - time.monotonic()
                if left <= 0:
                    self.refused += 1
                    raise Full(self.name)
                with suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(turn), min(left, RECHECK))
        finally:
            if turn in self.waiting:
                self.waiting.remove(turn)
            if not turn.done():
                turn.cancel()
        self.busy += 1
        self._next()  # the one behind may go too, if there is room

    def _next(self) -> None:
        """Wake the first one waiting when a turn is free."""
        if self.waiting and self.busy < self.concurrency and not self.waiting[0].done():
            self.waiting[0].set_result(None)


def _unstalled(send: Send) -> Send:
    """`send`, raising Stalled when the client has not taken a piece of the answer within STALL seconds
    (uvicorn waits for the client to read before it takes more; the connection is then closed)."""

    async def guarded(message: Message) -> None:
        try:
            await asyncio.wait_for(send(message), STALL)
        except asyncio.TimeoutError as err:
            raise Stalled from err

    return guarded


def _sweeping(scope: Scope) -> bool:
    """A page that may sweep: view=heads or view=compare, not a live update of the output panel."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    if not any(v.strip().lower() in SWEEP_VIEWS for v in query.get("view", [])):
        return False
    return not any(k == b"hx-target" and v == b"output" for k, v in scope.get("headers", []))


def _settling(scope: Scope) -> bool:
    """The temperature slider's request once it rests, on the explainer's page."""
    return scope.get("path") == "/" and any(
        k == b"hx-target" and v == SETTLE_TARGET for k, v in scope.get("headers", [])
    )


class Admission:
    """ASGI middleware: each request that works waits for a turn in its lanes (app.state.lanes)."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, settings: Settings) -> None:
        self.app = app
        self.fastapi = fastapi
        timeout = settings.queue_timeout
        self.line = Lane("line", settings.concurrency, settings.queue_size, timeout)
        self.heavy = Lane("heavy", 1, settings.queue_size, timeout, retry_after=2)
        self.exports = Lane("exports", settings.export_concurrency, settings.export_queue, timeout)
        self.sweeps = Lane("sweeps", settings.sweep_concurrency + 1, settings.queue_size, timeout)
        self.settle = Lane("settle", SETTLE_CONCURRENCY, settings.queue_size, timeout)
        lanes = (self.line, self.heavy, self.exports, self.sweeps, self.settle)
        fastapi.state.lanes = {lane.name: lane for lane in lanes}
        fastapi.state.work_line = self.line

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path or path.startswith(NO_WAIT):
            await self.app(scope, receive, send)
            return
        first = self.heavy if path in HEAVY_PATHS else None
        if path.startswith(SWEEP_EXPORTS) or (path == "/" and _sweeping(scope)):
            first = self.sweeps
        elif path.startswith(EXPORT_PREFIX):
            first = self.exports
        lane = self.line
        try:
            if first is None and _settling(scope):  # its own lane, not the line
                lane = self.settle
                async with self.settle.turn():
                    await self.app(scope, receive, send)
            elif first is not None:
                lane = first
                async with first.turn():
                    lane = self.line
                    async with self.line.turn():
                        await self.app(scope, receive, _unstalled(send))
            else:
                async with self.line.turn():
                    await self.app(scope, receive, send)
        except Full:
            await self._refuse(lane, scope, receive, send)
        except Stalled:
            log.info("a client left a big answer unread for %g s; dropped", STALL)

    async def _refuse(self, lane: Lane, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        answer = refusal(
            self.fastapi, scope["path"], headers, 503, BUSY_MESSAGE, lane.retry_after(), query_of(scope)
        )
        await answer(scope, receive, send)
