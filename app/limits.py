"""A lecture hall at once: bounded model runs, request limits and an optional per-client rate limit.

- `RunQueue`: at most `max_running` model runs at a time and `queue_size` more waiting for a slot; past that
  (or after waiting `queue_timeout` seconds) a request gets HTTP 503 with Retry-After instead of slowing
  everyone down. Only real model runs queue: a cached trace, or one another request is computing already
  (single flight), never takes a slot.
- `RequestLimits`: an ASGI middleware refusing over-long URLs (414), bodies (413) and, when a rate is set,
  clients over it (429), before any route runs.
- `install(app, settings)`: wires them into the app with the lanes of requests (app/admission.py: the line,
  the biggest answers one at a time, the exports) and the finished-page cache (app/pagecache.py); every
  refusal gets a friendly page or `{"detail": ...}` JSON (app/refusals.py).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.admission import Admission
from app.pagecache import PageCache
from app.refusals import BODY_MESSAGE, BUSY_MESSAGE, RATE_MESSAGE, URL_MESSAGE, query_of, refusal
from app.settings import Settings

FREE_PATHS = ("/static/", "/healthz")  # never rate limited: assets are cached and probes must get through
SWITCH_INTERVAL = 0.001  # seconds; Python's default is 0.005


class Busy(Exception):
    """The model queue is full: the request is refused, to be retried after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass
class QueueStats:
    running: int
    waiting: int
    max_running: int
    queue_size: int
    runs: int  # model runs finished
    refused: int  # requests answered 503 because the queue was full
    timed_out: int  # requests answered 503 after waiting too long
    mean_run_ms: float
    run_cpu_s: float  # CPU time of the runs, on the threads that ran them


class RunQueue:
    """Model runs, at most `max_running` at once and `queue_size` waiting; `slot()` wraps one run. The served
    model's Gate (model/gpt2.py)."""

    def __init__(self, max_running: int, queue_size: int, timeout: float) -> None:
        self.max_running = max_running
        self.queue_size = queue_size
        self.timeout = timeout
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)  # a slot came free, or a run finished
        self._free = max_running
        self._admitted = 0  # running + waiting
        self._foreground = 0  # waiting, not background: a background run lets them go first
        self._running = 0
        self._runs = 0
        self._refused = 0
        self._timed_out = 0
        self._mean_s = 0.1  # moving average of one run, for Retry-After
        self._cpu_s = 0.0

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: its length times one run, shared by the slots."""
        return max(1, min(60, math.ceil(self._admitted * self._mean_s / self.max_running)))

    @contextmanager
    def slot(self, done: Callable[[], bool] | None = None, *, background: bool = False) -> Iterator[bool]:
        """Hold a run slot for the body of the `with`; raise Busy when the queue is full or too slow.

        With `done`, stop waiting as soon as it is true (another run did this one's work, model/gpt2.py
        packs waiting texts into one run): the body then runs without a slot and the `with` gives False.
        A `background` run (one of a sweep's: model/gpt2.py) takes a free slot only when no other run is
        waiting for one, so a sweep of a hundred runs never holds a page back for more than one of them."""
        with self._lock:
            if self._admitted >= self.max_running + self.queue_size:
                self._refused += 1
                raise Busy(BUSY_MESSAGE, self.retry_after())
            self._admitted += 1
            if not background:
                self._foreground += 1
        try:
            with self._turn:
                finished = done or (lambda: False)
                if background:
                    ready = lambda: (self._free > 0 and self._foreground == 0) or finished()  # noqa: E731
                else:
                    ready = lambda: self._free > 0 or finished()  # noqa: E731
                waited = self._turn.wait_for(ready, self.timeout)
                if not background:
                    self._foreground -= 1
                    if self._foreground == 0:
                        self._turn.notify_all()  # a sweep's run may be the next in line now
                if not waited:
                    self._timed_out += 1
                    raise Busy(BUSY_MESSAGE, self.retry_after())
                holding = not finished()
                if holding:
                    self._free -= 1
                    self._running += 1
            if not holding:
                yield False
                return
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                yield True
            finally:
                seconds = time.perf_counter() - start
                cpu = time.thread_time() - cpu
                with self._turn:
                    self._cpu_s += cpu
                    self._free += 1
                    self._running -= 1
                    self._runs += 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * seconds
                    self._turn.notify_all()  # the next in line, and those whose texts this run carried
        finally:
            with self._lock:
                self._admitted -= 1

    def stats(self) -> QueueStats:
        with self._lock:
            return QueueStats(
                running=self._running,
                waiting=self._admitted - self._running,
                max_running=self.max_running,
                queue_size=self.queue_size,
                runs=self._runs,
                refused=self._refused,
                timed_out=self._timed_out,
                mean_run_ms=round(self._mean_s * 1000, 1),
                run_cpu_s=round(self._cpu_s, 3),
            )


class RateLimiter:
    """A token bucket per client: `rate` requests a second on average, bursts of up to `burst`."""

    MAX_CLIENTS = 10_000  # past this many buckets, the full (idle) ones are forgotten

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time of last update)
        self._lock = threading.Lock()
        self.refused = 0

    def take(self, client: str) -> float:
        """Take one token for `client`: 0.0 if it may go ahead, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, then = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.MAX_CLIENTS:
                    self._forget_idle(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            self.refused += 1
            return (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        full = [c for c, (t, then) in self._buckets.items() if t + (now - then) * self.rate >= self.burst]
        for client in full:
            del self._buckets[client]


class RequestLimits:
    """Refuse what no route should see: over-long URLs, request bodies, clients over the rate limit."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, settings: Settings) -> None:
        self.app = app
        self.fastapi = fastapi
        self.max_url = settings.max_url
        self.max_body = settings.max_body
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        fastapi.state.rate_limiter = self.limiter
        fastapi.state.request_limits = self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        url_size = len(scope.get("raw_path") or path.encode("utf-8", "surrogatepass")) + len(
            scope.get("query_string", b"")
        )
        refused: Response | None = None
        query = query_of(scope)
        if url_size > self.max_url:
            refused = refusal(
                self.fastapi, path, headers, 414, URL_MESSAGE, query=query, size=url_size, most=self.max_url
            )
        elif self._body_too_big(headers):
            refused = refusal(self.fastapi, path, headers, 413, BODY_MESSAGE, query=query, most=self.max_body)
        elif self.limiter is not None and not path.startswith(FREE_PATHS):
            client = scope.get("client")
            wait = self.limiter.take(client[0] if client else "unknown")
            if wait > 0:
                refused = refusal(self.fastapi, path, headers, 429, RATE_MESSAGE, math.ceil(wait), query)
        if refused is not None:
            await refused(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _body_too_big(self, headers: dict[str, str]) -> bool:
        """Every route reads its input from the URL: a body of unknown size (chunked) is refused too."""
        if "transfer-encoding" in headers:
            return True
        length = headers.get("content-length", "0").strip()
        return not length.isdigit() or int(length) > self.max_body


def tune_thread_pool(settings: Settings) -> None:
    """Threads for the requests worked on at once, and a shorter GIL switch interval.

    Pages are drawn in anyio's worker threads (at most `concurrency` at a time, app/admission.py) while the
    event loop answers everyone else. A thread waiting for the GIL gets it after the holder's switch interval
    (5 ms by default); at 1 ms the loop sends cached pages and static files without queueing behind a
    page being drawn. Call it inside the event loop, at startup.
    """
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, settings.concurrency + 8)
    sys.setswitchinterval(SWITCH_INTERVAL)


def attach(app: FastAPI) -> None:
    """Put the served model's runs through the app's queue (once the model is loaded): the queue is the
    model's Gate (model/gpt2.py), so the model waits on it without knowing the web layer."""
    serving = getattr(app.state, "serving", None)
    if serving is not None:
        serving.gpt2.gate = app.state.run_queue


def install(app: FastAPI, settings: Settings) -> None:
    """Add the run queue, the request limits and the answers to refused requests to `app`."""
    app.state.run_queue = RunQueue(settings.max_running, settings.queue_size, settings.queue_timeout)
    attach(app)

    @app.exception_handler(Busy)
    async def busy(request: Request, err: Busy) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return refusal(app, request.url.path, headers, 503, err.message, err.retry_after, request.url.query)

    app.add_middleware(Admission, fastapi=app, settings=settings)
    if settings.page_cache_mb:
        app.add_middleware(PageCache, max_bytes=settings.page_cache_mb * 2**20, state=app.state)
    app.add_middleware(RequestLimits, fastapi=app, settings=settings)  # outside: limits apply to cached pages
