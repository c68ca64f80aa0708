"""What the app tells a shared cache: Cache-Control public only for the example prompts, a Vary that names
every header a page depends on, and the replica's name when asked."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient

from app.state import REFERENCE_PROMPTS, quote_text
from tests.classroom.conftest import MakeClient

PUBLIC = "public, max-age=600"
PRIVATE = "private, no-cache"
EXAMPLE = REFERENCE_PROMPTS[2]


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


def test_the_example_prompts_are_public_and_a_students_own_text_is_private(client: TestClient) -> None:
    assert client.get("/").headers["Cache-Control"] == PUBLIC  # the page opens on the first example
    assert client.get("/", params={"text": EXAMPLE}).headers["Cache-Control"] == PUBLIC
    assert (
        client.get("/", params={"text": EXAMPLE, "layer": "2", "view": "mlp"}).headers["Cache-Control"]
        == PUBLIC
    )
    assert (
        client.get(
            "/", params={"text": EXAMPLE}, headers={"HX-Request": "true", "HX-Target": "output"}
        ).headers["Cache-Control"]
        == PUBLIC
    )
    assert client.get("/export/tokens.csv", params={"text": EXAMPLE}).headers["Cache-Control"] == PUBLIC
    assert client.get("/api/predict", params={"text": EXAMPLE}).headers["Cache-Control"] == PUBLIC

    mine = "My own sentence about the sea"
    assert client.get("/", params={"text": mine}).headers["Cache-Control"] == PRIVATE
    assert client.get("/api/predict", params={"text": mine}).headers["Cache-Control"] == PRIVATE
    assert client.get("/export/tokens.csv", params={"text": mine}).headers["Cache-Control"] == PRIVATE
    # an example with tokens a student generated is theirs too
    assert client.get("/", params={"text": EXAMPLE, "gen": "11,12"}).headers["Cache-Control"] == PRIVATE


def test_every_link_on_an_examples_page_to_another_example_is_public(client: TestClient) -> None:
    page = client.get("/", params={"text": EXAMPLE}).text
    links = {p: page.count(f'href="/?text={quote_text(p)}') for p in REFERENCE_PROMPTS}
    assert all(links.values()), links
    for prompt in REFERENCE_PROMPTS:
        start = page.index(f'href="/?text={quote_text(prompt)}') + len('href="')
        url = page[start : page.index('"', start)].replace("&amp;", "&")
        assert client.get(url).headers["Cache-Control"] == PUBLIC, url


def test_refusals_errors_and_live_counters_are_never_stored(make_client: MakeClient) -> None:
    client = make_client(rate_limit=0.01, rate_burst=3)
    assert client.get("/healthz").headers["Cache-Control"] == "no-store"
    assert client.get("/api/stats").headers["Cache-Control"] == "no-store"
    empty = client.get("/", params={"text": " "})
    assert empty.status_code == 400 and empty.headers["Cache-Control"] == "no-store"
    pressed = client.get("/", params={"text": EXAMPLE, "action": "generate"}, follow_redirects=False)
    assert pressed.status_code == 303 and pressed.headers["Cache-Control"] == "no-store"
    limited = client.get("/", params={"text": EXAMPLE})
    assert limited.status_code == 429 and limited.headers["Cache-Control"] == "no-store"


def test_static_files_keep_their_one_long_lived_cache_control(client: TestClient) -> None:
    page = client.get("/").text
    css = page[page.index("/static/style.css?v=") :].split('"', 1)[0]
    r = client.get(css)
    assert r.headers.get_list("Cache-Control") == ["public, max-age=31536000, immutable"]


def test_the_page_names_in_vary_every_header_it_depends_on(client: TestClient) -> None:
    fragment = client.get("/", headers={"HX-Request": "true"})
    restored = client.get("/", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    # htmx restoring history asks for the whole page: a cache must not answer it with the fragment
    assert "<html" not in fragment.text and "<html" in restored.text
    vary = {v.strip() for v in restored.headers["Vary"].split(",")}
    assert {"HX-Request", "HX-Target", "HX-History-Restore-Request", "Accept-Language"} <= vary


def test_the_replica_header_names_the_host_and_port_only_when_asked(
    make_client: MakeClient,
) -> None:
    assert "X-Glassbox-Replica" not in make_client().get("/healthz").headers
    named = make_client(replica_header=True, port=8123)
    for path in ("/healthz", "/", "/static/style.css", "/nowhere"):
        assert named.get(path).headers["X-Glassbox-Replica"] == f"{socket.gethostname()}:8123"
