"""A bound on a request's head (request line and headers) with either of uvicorn's HTTP parsers.

uvicorn bounds the head only with h11 (`h11_max_incomplete_event_size`). With httptools, which uvicorn picks
whenever it is installed (Glassbox depends on it), nothing does: llhttp passes every header on however long
it is, and uvicorn keeps them all (a 16 MB header was read whole). `HeadLimitedHttpTools` counts the bytes
that arrive before a request's headers are complete and, past the limit, answers 431 and closes the
connection. app/server.py's `server_options` gives uvicorn the limit (the same for h11) and the parser.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.settings import Settings

HEADERS_ALLOWANCE = 32 * 1024  # bytes for the headers on top of the longest URL (`max_url`, 414 past it)
MESSAGE = b"The request's headers are far too large.\n"
REFUSAL = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(MESSAGE), MESSAGE)
)


def head_limit(settings: Settings) -> int:
    """Bytes a request's line and headers may take."""
    return settings.max_url + HEADERS_ALLOWANCE


class HeadLimitedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request whose head passes `h11_max_incomplete_event_size`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_limit = self.config.h11_max_incomplete_event_size or head_limit(Settings.model_validate({}))
        self.head_bytes = 0  # received since the current request began, while its headers are incomplete
        self.in_head = True

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            if self.head_bytes > self.head_limit:
                self.in_head = False
                self.transport.write(REFUSAL)
                self.transport.close()
                return
        if not self.transport.is_closing():
            super().data_received(data)

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_bytes = True, 0  # the next request on this connection starts counting
