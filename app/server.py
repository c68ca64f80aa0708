"""The HTTP connection as uvicorn serves it, with the timeouts a public server needs.

uvicorn closes a keep-alive connection that stays idle `timeout_keep_alive` seconds after an answer, but it
sets no clock on a request's header: a client that connects and sends nothing, or a header one byte at a
time ("slowloris"), keeps its connection (and a file descriptor) for as long as it likes, and a second byte
after an answer stops the keep-alive clock too. Glassbox serves with uvicorn's httptools protocol plus one
more clock (`GuardedHttpTools`): from the connection's first moment, and from the first byte of every later
request, the whole header must arrive within `--header-timeout` seconds (10), or the connection is closed.
Idle kept-alive connections close after `--keep-alive-timeout` seconds (5, uvicorn's own clock).

Behind nginx (deploy/), nginx's own `client_header_timeout` and `keepalive_timeout` face the clients, and
these clocks only bound the connections nginx keeps open to Glassbox.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from functools import cache
from typing import Any

from app.headlimit import HeadLimitedHttpTools, head_limit


@cache
def header_timeout() -> float:
    """The header timeout of this process: every worker reads the settings from the environment, where
    `glassbox serve` puts them (app/cli.py)."""
    from app.settings import Settings

    return float(os.environ.get("GLASSBOX_HEADER_TIMEOUT") or Settings.model_fields["header_timeout"].default)


class GuardedHttpTools(HeadLimitedHttpTools):
    """uvicorn's httptools protocol with a bound on the request head's size (app/headlimit.py), closing
    connections whose request head is not complete in time."""

    _header_clock: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_clock()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_clock is None:  # a later request on a kept-alive connection
            self._start_header_clock()

    def on_headers_complete(self) -> None:
        self._stop_header_clock()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_clock()
        super().connection_lost(exc)

    def _start_header_clock(self) -> None:
        self._header_clock = self.loop.call_later(header_timeout(), self._header_too_slow)

    def _stop_header_clock(self) -> None:
        if self._header_clock is not None:
            self._header_clock.cancel()
            self._header_clock = None

    def _header_too_slow(self) -> None:
        self._header_clock = None
        if not self.transport.is_closing():
            self.transport.close()


def server_options(settings: Any) -> dict[str, Any]:
    """uvicorn's options for Glassbox's connections (app/cli.py passes them to uvicorn.run): the head's size
    bound and the header clock with httptools (named by import path, so worker processes can load it), h11's
    own size bound without it, and the keep-alive timeout."""
    http = "app.server:GuardedHttpTools" if importlib.util.find_spec("httptools") else "h11"
    return {
        "http": http,
        "h11_max_incomplete_event_size": head_limit(settings),
        "timeout_keep_alive": settings.keep_alive_timeout,
    }


M_ARENA_MAX = -8  # glibc's mallopt parameter
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Let glibc's malloc use at most `arenas` arenas (MALLOC_ARENA_MAX), for threads started from now on.

    By default every thread that allocates gets an arena of its own, up to 8 per core, and memory freed in
    one is not given back while a little of it is in use: with pages drawn in a pool of threads, a worker's
    RSS grew about 500 MB past what its caches hold (bench/memory.py, views: peak 2060 MB with the
    default, 1533 MB with 2 arenas, the plan being 1600). False where the C library is not glibc."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, arenas))
    except (OSError, AttributeError, TypeError):
        return False
