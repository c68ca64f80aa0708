"""`glassbox serve` as a server process: workers that survive a busy start, HEAD, a bounded request head."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.cli.test_commands import _wait_for, glassbox
from tests.sources.fakehub import closed_port

pytestmark = [pytest.mark.usefixtures("isolated"), pytest.mark.slow]

HOGS = 4  # busy processes on a 2-core machine: each worker gets about a third of a core
WATCH_SECONDS = 15  # the supervisor pings every worker twice a second; watched this long after startup


class Server:
    def __init__(self, *args: str) -> None:
        self.port = closed_port()
        self.process = subprocess.Popen(
            glassbox("serve", "--port", str(self.port), *args),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(self.process.stdout or []), daemon=True
        )
        self._reader.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> str:
        self.process.terminate()
        self.process.wait(timeout=60)
        self._reader.join(timeout=5)
        return "".join(self.lines)


@pytest.fixture
def hogs() -> Iterator[None]:
    """A few processes that keep every core busy."""
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(HOGS)]
    try:
        yield
    finally:
        for hog in busy:
            hog.kill()
            hog.wait()


@pytest.mark.usefixtures("hogs")
def test_two_workers_started_on_busy_cores_all_live() -> None:
    server = Server("--workers", "2", "--model", "tiny", "--threads", "1")
    try:
        health = _wait_for(f"{server.url}/healthz", server.process)
        time.sleep(WATCH_SECONDS)
    finally:
        log = server.stop()

    assert health == 200, log
    assert log.count("Application startup complete") == 2, log
    assert "died" not in log and "failed to start" not in log, log


@pytest.fixture(scope="module")
def tiny_server() -> Iterator[Server]:
    server = Server("--model", "tiny", "--threads", "1")
    try:
        assert _wait_for(f"{server.url}/healthz", server.process) == 200, "".join(server.lines)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["/healthz", "/", "/?text=hello&view=attention", "/api"])
def test_head_answers_like_get_without_a_body(tiny_server: Server, path: str) -> None:
    head = urllib.request.urlopen(urllib.request.Request(tiny_server.url + path, method="HEAD"), timeout=30)
    get = urllib.request.urlopen(tiny_server.url + path, timeout=30)

    assert head.status == get.status == 200
    assert head.read() == b""
    assert head.headers["content-type"] == get.headers["content-type"]


def test_a_16_mb_header_is_refused_with_431(tiny_server: Server) -> None:
    answer = b""
    with socket.create_connection(("127.0.0.1", tiny_server.port), timeout=30) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            for _ in range(256):  # 16 MB in 64 KB pieces; the server closes the connection long before
                conn.sendall(b"a" * 65536)
        except OSError:  # reset by the server once it refused the head
            pass
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except OSError:
            pass

    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert urllib.request.urlopen(f"{tiny_server.url}/healthz", timeout=30).status == 200  # still serving


def test_headers_of_ordinary_size_pass(tiny_server: Server) -> None:
    request = urllib.request.Request(f"{tiny_server.url}/healthz", headers={"X-Note": "a" * 8000})

    assert urllib.request.urlopen(request, timeout=30).status == 200


def test_the_fallback_log_says_how_the_hub_failed() -> None:
    env_before = dict(os.environ)
    os.environ["HF_ENDPOINT"] = "http://no-such-host.invalid"
    try:
        server = Server("--threads", "1")
        try:
            assert _wait_for(f"{server.url}/healthz", server.process) == 200
        finally:
            log = server.stop()
    finally:
        os.environ.clear()
        os.environ.update(env_before)

    assert "serving the fallback" in log and "looking up the host's name failed (DNS" in log, log
