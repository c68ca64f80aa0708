"""A lecture hall at once: bounded model runs, request limits and an optional per-client rate limit.

- `RunQueue`: at most `max_running` model runs at a time and `queue_size` more waiting for a slot; past that
  (or after waiting `queue_timeout` seconds) a request gets HTTP 503 with Retry-After instead of slowing
  everyone down. Only real model runs queue: a cached trace, or one another request is computing already
  (single flight), never takes a slot.
- `RequestLimits`: an ASGI middleware refusing over-long URLs (414), bodies (413) and, when a rate is set,
  clients over it (429), before any route runs.
- `install(app, settings)`: wires both into the app, with the friendly page (HTML) or `{"detail": ...}`
  (JSON under /api/) that every refusal gets, and the finished-page cache (app/pagecache.py) inside them.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2_fragments import render_block
from starlette.types import ASGIApp, Receive, Scope, Send

from app.pagecache import PageCache
from app.settings import Settings

FREE_PATHS = ("/static/", "/healthz")  # never rate limited: assets are cached and probes must get through


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


class RunQueue:
    """Model runs, at most `max_running` at once and `queue_size` waiting; `slot()` wraps one run."""

    def __init__(self, max_running: int, queue_size: int, timeout: float) -> None:
        self.max_running = max_running
        self.queue_size = queue_size
        self.timeout = timeout
        self._slots = threading.Semaphore(max_running)
        self._lock = threading.Lock()
        self._admitted = 0  # running + waiting
        self._running = 0
        self._runs = 0
        self._refused = 0
        self._timed_out = 0
        self._mean_s = 0.1  # moving average of one run, for Retry-After

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained: its length times one run, shared by the slots."""
        return max(1, min(60, math.ceil(self._admitted * self._mean_s / self.max_running)))

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a run slot for the body of the `with`; raise Busy when the queue is full or too slow."""
        with self._lock:
            if self._admitted >= self.max_running + self.queue_size:
                self._refused += 1
                raise Busy(BUSY_MESSAGE, self.retry_after())
            self._admitted += 1
        try:
            if not self._slots.acquire(timeout=self.timeout):
                with self._lock:
                    self._timed_out += 1
                raise Busy(BUSY_MESSAGE, self.retry_after())
            start = time.perf_counter()
            with self._lock:
                self._running += 1
            try:
                yield
            finally:
                seconds = time.perf_counter() - start
                with self._lock:
                    self._running -= 1
                    self._runs += 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * seconds
                self._slots.release()
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


class RequestLimits:
    """Refuse what no route should see: over-long URLs, request bodies, clients over the rate limit."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, settings: Settings) -> None:
        self.app = app
        self.fastapi = fastapi
        self.max_url = settings.max_url
        self.max_body = settings.max_body
        self.limiter = RateLimiter(settings.rate_limit, settings.rate_burst) if settings.rate_limit else None
        fastapi.state.rate_limiter = self.limiter

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
        if url_size > self.max_url:
            refused = refusal(self.fastapi, path, headers, 414, url_message(url_size, self.max_url))
        elif self._body_too_big(headers):
            refused = refusal(self.fastapi, path, headers, 413, body_message(self.max_body))
        elif self.limiter is not None and not path.startswith(FREE_PATHS):
            client = scope.get("client")
            wait = self.limiter.take(client[0] if client else "unknown")
            if wait > 0:
                refused = refusal(self.fastapi, path, headers, 429, RATE_MESSAGE, math.ceil(wait))
        if refused is not None:
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _body_too_big(self, headers: dict[str, str]) -> bool:
        """Every route reads its input from the URL: a body of unknown size (chunked) is refused too."""
        if "transfer-encoding" in headers:
            return True
        length = headers.get("content-length", "0").strip()
        return not length.isdigit() or int(length) > self.max_body


def tune_thread_pool(settings: Settings) -> None:
    """Enough threads for every queued model run plus the requests served from the cache meanwhile.

    Sync routes run in anyio's thread pool (40 threads by default); runs waiting for a slot hold a thread,
    so without room to spare they could starve the cheap requests. Call it inside the event loop.
    """
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(limiter.total_tokens, settings.max_running + settings.queue_size + 32)


def attach(app: FastAPI) -> None:
    """Put the served model's runs through the app's queue (once the model is loaded)."""
    serving = getattr(app.state, "serving", None)
    if serving is not None:
        serving.gpt2.gate = app.state.run_queue.slot


def install(app: FastAPI, settings: Settings) -> None:
    """Add the run queue, the request limits and the answers to refused requests to `app`."""
    app.state.run_queue = RunQueue(settings.max_running, settings.queue_size, settings.queue_timeout)
    attach(app)

    @app.exception_handler(Busy)
    async def busy(request: Request, err: Busy) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return refusal(app, request.url.path, headers, 503, err.message, err.retry_after)

    if settings.page_cache_mb:
        app.add_middleware(PageCache, max_bytes=settings.page_cache_mb * 2**20, state=app.state)
    app.add_middleware(RequestLimits, fastapi=app, settings=settings)  # outside: limits apply to cached pages
