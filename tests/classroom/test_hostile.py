"""A server under hostile clients (a real `glassbox serve` over loopback): headers that never finish, idle
kept-alive connections, big answers nobody reads."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from bench.memory import PLAN_MB, Server, build_graph, text_of, views


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    cache = str(tmp_path_factory.mktemp("graphs"))
    s = Server("tiny", cache, "--header-timeout", "1", "--keep-alive-timeout", "1", "--queue-timeout", "3")
    yield s
    s.stop()


def closed_within(s: socket.socket, seconds: float) -> bool:
    """True when the server closes `s` (recv gives b"" or the connection is reset) within `seconds`."""
    s.settimeout(seconds)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_a_header_that_never_ends_is_closed(server: Server) -> None:
    silent = socket.create_connection(("127.0.0.1", server.port))
    partial = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    for s in partial:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # and never the rest
    time.sleep(0.5)
    for s in partial[:10]:
        s.sendall(b"a")  # a byte now and then does not buy more time
    assert closed_within(silent, 5)
    assert all(closed_within(s, 5) for s in partial)
    assert httpx.get(f"{server.base}/healthz").status_code == 200  # the server itself is fine


def test_an_idle_kept_alive_connection_is_closed(server: Server) -> None:
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    s.settimeout(5)
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    start = time.monotonic()
    assert closed_within(s, 5)
    assert time.monotonic() - start >= 0.5
    # a second request begun on a kept-alive connection must finish its header in time too
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    s.sendall(b"GET /healthz HTTP/1.1\r\n")
    assert closed_within(s, 5)


def test_big_answers_nobody_reads_do_not_pile_up(server: Server) -> None:
    """30 clients ask for a tens-of-MB /api/trace answer and read nothing: streamed, each holds back the
    writing, so the worker's memory grows by far less than one answer per client."""
    query = urlencode({"text": text_of(1, 200), "names": "*"})
    one = httpx.get(f"{server.base}/api/trace?{query}", timeout=120)
    assert one.status_code == 200
    size_mb = len(one.content) / 2**20
    assert size_mb > 10  # a big answer (the trace is cached now)
    before, _ = server.memory_mb()
    clients = []
    for _ in range(30):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET /api/trace?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        clients.append(s)
    time.sleep(4)
    during, _ = server.memory_mb()
    for s in clients:
        s.close()
    print(f"one answer {size_mb:.0f} MB; worker RSS {before:.0f} MB before, {during:.0f} MB with 30 unread")
    assert during - before < 3 * size_mb  # buffered whole, 30 answers would be 30 times it
    assert httpx.get(f"{server.base}/healthz").status_code == 200


def test_the_log_names_no_traceback(server: Server) -> None:
    server.log.seek(0)
    assert "Traceback" not in server.log.read().decode(errors="replace")


@pytest.mark.slow
def test_many_views_of_many_texts_stay_within_the_plan() -> None:
    """18 texts of 32 tokens x 64 attention views, 8 at once, on GPT-2 small's shapes: the pictures kept with
    each trace are counted in the trace cache's budget, so the worker stays within README's plan."""
    build_graph("random-gpt2", None)  # here: the worker's peak is then its own, not the graph build's
    server = Server("random-gpt2", None)
    try:
        n, statuses = views(server.base, texts=18, per_text=64)
        now, peak = server.memory_mb()
        stats = httpx.get(f"{server.base}/api/stats").json()
    finally:
        server.stop()
    print(f"{n} views: peak RSS {peak:.0f} MB, at the end {now:.0f} MB (plan {PLAN_MB} MB)")
    assert statuses == {200: 1152}
    assert stats["cache"]["bytes"] <= stats["cache"]["max_bytes"]
    assert peak <= PLAN_MB
