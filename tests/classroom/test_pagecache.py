"""The finished-page cache: a link 300 students open is drawn once; nothing stale or refused is kept."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from starlette.types import Receive, Scope, Send

from app.pagecache import PageCache
from tests.classroom.conftest import HX, TEXT, MakeClient


def test_the_same_link_is_drawn_once(client: TestClient) -> None:
    first = client.get("/", params={"text": TEXT})
    again = [client.get("/", params={"text": TEXT}) for _ in range(5)]

    pages = client.get("/api/stats").json()["pages"]
    assert pages["misses"] == 1 and pages["hits"] == 5
    assert all(r.content == first.content and r.status_code == 200 for r in again)
    assert again[0].headers["content-security-policy"] == first.headers["content-security-policy"]
    assert again[0].headers["x-content-type-options"] == "nosniff"  # once, not once per replay


def test_static_files_are_kept_gzipped(client: TestClient) -> None:
    page = client.get("/", params={"text": TEXT}).text
    css = page[page.index("/static/style.css") :].split('"')[0].replace("&amp;", "&")
    first = client.get(css, headers={"Accept-Encoding": "gzip"})
    again = client.get(css, headers={"Accept-Encoding": "gzip"})
    plain = client.get(css, headers={"Accept-Encoding": "identity"})

    assert first.headers["content-encoding"] == again.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers  # a client without gzip gets its own copy
    assert first.content == again.content == plain.content and b".chip" in first.content
    assert again.headers["content-type"].startswith("text/css")
    assert client.get("/api/stats").json()["pages"]["hits"] == 1


def test_fragments_and_languages_are_kept_apart(client: TestClient) -> None:
    full = client.get("/", params={"text": TEXT})
    fragment = client.get("/", params={"text": TEXT}, headers={**HX, "HX-Target": "page"})
    live = client.get("/", params={"text": TEXT}, headers={**HX, "HX-Target": "output"})
    other_language = client.get("/", params={"text": TEXT}, headers={"Accept-Language": "zh-CN"})

    assert len({full.text, fragment.text, live.text}) == 3
    assert client.get("/api/stats").json()["pages"]["misses"] == 4
    assert other_language.status_code == 200


def test_a_message_page_is_kept_but_a_busy_one_is_not(make_client: MakeClient) -> None:
    client = make_client(max_running=1, queue_size=0)
    queue = client.app.state.run_queue  # type: ignore[attr-defined]

    assert client.get("/", params={"text": TEXT, "top_k": "0"}).status_code == 400
    with queue.slot():
        assert client.get("/", params={"text": "Nobody asked this yet"}).status_code == 503
    assert client.get("/", params={"text": "Nobody asked this yet"}).status_code == 200
    assert client.get("/", params={"text": TEXT, "top_k": "0"}).status_code == 400
    assert client.get("/api/stats").json()["pages"]["hits"] == 1


def test_it_can_be_turned_off(make_client: MakeClient) -> None:
    client = make_client(page_cache_mb=0)
    client.get("/")

    assert client.get("/api/stats").json()["pages"] is None


def call(cache: PageCache, path: str = "/", query: bytes = b"a=1") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    scope = {"type": "http", "method": "GET", "path": path, "query_string": query, "headers": []}
    # a thread of its own: a browser test in the same session may leave an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, cache(scope, receive, send)).result()
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def app_answering(headers: list[tuple[bytes, bytes]], body: bytes = b"x" * 100) -> Any:
    calls = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["query_string"])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    app.calls = calls  # type: ignore[attr-defined]
    return app


def test_only_answers_that_vary_on_known_headers_are_kept() -> None:
    known = app_answering([(b"vary", b"HX-Request, HX-Target, Accept-Language")])
    unknown = app_answering([(b"vary", b"Cookie")])
    cookie = app_answering([(b"vary", b"HX-Request"), (b"set-cookie", b"a=1")])
    silent = app_answering([])

    for app, runs in ((known, 1), (unknown, 2), (cookie, 2), (silent, 2)):
        cache = PageCache(app, max_bytes=10_000)
        call(cache)
        call(cache)
        assert len(app.calls) == runs


def test_the_cache_is_bounded_by_bytes() -> None:
    app = app_answering([(b"vary", b"HX-Request")], body=b"x" * 1000)
    cache = PageCache(app, max_bytes=10_000)

    for i in range(30):
        call(cache, query=f"a={i}".encode())

    assert cache.nbytes <= 10_000
    assert 5 <= len(cache) < 10
    call(cache, query=b"a=29")  # the newest is still there
    assert len(app.calls) == 30


def test_pages_for_another_host_name_are_kept_apart(make_client: MakeClient) -> None:
    client = make_client(allowed_hosts="laptop.local,10.0.0.5")  # names this server answers to
    here = client.get("/", params={"text": TEXT}, headers={"Host": "laptop.local:8000"})
    there = client.get("/", params={"text": TEXT}, headers={"Host": "10.0.0.5:8000"})

    assert here.status_code == there.status_code == 200
    assert "http://laptop.local:8000/?" in here.text  # the share link names the address the student used
    assert "laptop.local" not in there.text
    assert client.get("/api/stats").json()["pages"]["misses"] == 2
