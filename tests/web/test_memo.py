"""Pictures kept with a trace are shared between students, never their links, and never grow without bound."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.loading import Serving
from app.main import create_app
from app.pieces import MARK as SAMPLING_MARK
from app.pieces import PieceCache
from app.settings import Settings
from app.state import STEPS, VIEWS, text_digest
from app.views.memo import MEMO_ENTRIES, memo
from model import GPT2
from tests.web.conftest import HX, parse

TEXT = "Data visualization empowers users to"


def panel(html: str) -> str:
    start = html.index('<section id="panel"')
    return html[start : html.index("</section>", start)]


def test_two_students_share_the_pictures_but_keep_their_own_links(client: TestClient) -> None:
    for view in ("attention", "embedding", "mlp", "residual"):
        a = client.get("/", params={"text": TEXT, "view": view, "layer": "2", "temperature": "0.5"}).text
        b = client.get("/", params={"text": TEXT, "view": view, "layer": "2", "temperature": "1.7"}).text
        pa, pb = panel(a), panel(b)
        assert pa != pb  # the links differ ...
        assert pa.replace("temperature=0.5", "temperature=1.7") == pb  # ... and nothing else
        hrefs = [e["href"] for e in parse(pb).all("a", href="*") if "temperature" in e["href"]]
        assert hrefs and all("temperature=1.7" in h for h in hrefs)


def test_pictures_are_kept_per_language(client: TestClient) -> None:
    en = panel(client.get("/", params={"text": TEXT, "view": "attention", "step": "scaled"}).text)
    zh = panel(
        client.get("/", params={"text": TEXT, "view": "attention", "step": "scaled", "lang": "zh-CN"}).text
    )
    assert "divided by" in en and "divided by" not in zh
    assert re.search("[\u4e00-\u9fff]", zh)


def test_a_trace_keeps_a_bounded_number_of_pictures(client: TestClient, gpt2: GPT2) -> None:
    text = "A bounded memo for one text"
    n = len(gpt2.tokenize(text))
    combos = [
        {"layer": layer, "head": head, "step": step, "token": token}
        for layer in range(1, gpt2.config.n_layer + 1)
        for head in range(1, gpt2.config.n_head + 1)
        for step in STEPS
        for token in range(1, n + 1)
    ][: MEMO_ENTRIES + 20]
    assert len(combos) == MEMO_ENTRIES + 20
    for params in combos:
        r = client.get("/", params={"text": text, "view": "attention", **params})
        assert r.status_code == 200
    kept = gpt2.trace([t.id for t in gpt2.tokenize(text)]).views
    assert len(kept) == MEMO_ENTRIES


# -- pieces of a page drawn once for every sampling -----------------------------------------------------

TEXTS = (
    TEXT,
    '<script>alert(1)</script> "><img src=x onerror=alert(1)> &amp;',
    "temperature=0.8&top_k=&top_p=&seed=0 view=mlp",  # what the filled-in links say, typed as text
    "right\u202eto left, zero\u200bwidth, 🙂 and 汉字",
)


@pytest.fixture(scope="module")
def uncached(gpt2: GPT2) -> Iterator[TestClient]:
    """An app without the finished-page cache, so every request is drawn (from kept pieces or not)."""
    app = create_app(
        Settings(max_chars=400, max_tokens=40, page_cache_mb=0),
        Serving(gpt2=gpt2, source=gpt2.loaded.description),
    )
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def alone(gpt2: GPT2) -> Iterator[TestClient]:
    """An app that keeps no pieces: every page drawn for its request alone."""
    app = create_app(
        Settings(max_chars=400, max_tokens=40, page_cache_mb=0, piece_cache_mb=0),
        Serving(gpt2=gpt2, source=gpt2.loaded.description),
    )
    with TestClient(app) as c:
        yield c


def pieces_stats(client: TestClient) -> dict[str, Any]:
    stats: dict[str, Any] = client.get("/api/stats").json()["pieces"]
    return stats


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.sampled_from(TEXTS),
    view=st.sampled_from(VIEWS),
    layer=st.integers(1, 2),
    head=st.integers(1, 3),
    step=st.sampled_from(STEPS),
    token=st.one_of(st.none(), st.integers(1, 4)),
    temperature=st.sampled_from(["", "0.05", "0.8", "1.37", "5"]),
    top_k=st.sampled_from(["", "1", "40"]),
    top_p=st.sampled_from(["", "0.5", "1"]),
    seed=st.sampled_from(["", "0", "12345"]),
    expand=st.booleans(),
    lang=st.sampled_from(["", "zh-CN"]),
    gen=st.sampled_from(["", "11,12"]),
    htmx=st.booleans(),
)
def test_a_page_from_kept_pieces_is_the_page_drawn_alone(
    uncached: TestClient, alone: TestClient, **controls: Any
) -> None:
    """Pieces drawn once with the sampling controls left as a mark, then filled in, give the very bytes
    of the page drawn for this request alone: every link, every escape, the ribbons."""
    htmx = controls.pop("htmx")
    params = {k: str(v) for k, v in controls.items() if v not in (None, False, "")}
    if controls["expand"]:
        params["expand"] = "1"
    if controls["gen"]:
        params["gen_for"] = text_digest(controls["text"])
    headers = {**HX, "HX-Target": "page"} if htmx else {}
    first = uncached.get("/", params=params, headers=headers)  # draws the pieces (or finds them)
    again = uncached.get("/", params=params, headers=headers)  # finds them
    drawn_alone = alone.get("/", params=params, headers=headers)
    assert first.status_code == drawn_alone.status_code == 200
    assert first.text == again.text == drawn_alone.text
    assert SAMPLING_MARK not in drawn_alone.text and "<!--fan" not in drawn_alone.text


def test_pieces_are_drawn_once_for_every_temperature(uncached: TestClient) -> None:
    """The page's parts, and the output and the ribbons at every stop of the slider, are drawn once for
    all the slider's temperatures; a link's own temperature off the stops draws the output once more."""
    before = pieces_stats(uncached)
    text = "Pieces shared by every slider position"
    pages = [
        uncached.get("/", params={"text": text, "view": "mlp", "temperature": t}).text
        for t in ("0.3", "1.2", "2", "2.9")
    ]
    after = pieces_stats(uncached)
    # drawn for the first temperature: the page's parts and the output at every stop; then 2.9, not a stop
    assert after["misses"] - before["misses"] == 3
    assert after["hits"] - before["hits"] == 3 + 2  # the parts filled in three times, the stops found twice
    hrefs = [e["href"] for e in parse(pages[3]).all("a", href="*") if e["href"].startswith("/?")]
    assert hrefs and all("temperature=2.9&top_k=&top_p=&seed=0&" in h for h in hrefs)
    assert all("temperature=0.3" not in h for h in hrefs)


def test_text_with_the_mark_in_it_is_drawn_alone(uncached: TestClient) -> None:
    """The mark is unguessable; were it typed anyway, that page is drawn for the request alone."""
    before = pieces_stats(uncached)
    text = f"a text that holds {SAMPLING_MARK} somehow"
    page = uncached.get("/", params={"text": text, "temperature": "1.5"}).text
    assert SAMPLING_MARK in page  # shown as typed, not filled in
    after = pieces_stats(uncached)
    assert (after["hits"], after["misses"]) == (before["hits"], before["misses"])


def test_the_piece_cache_is_bounded_by_bytes() -> None:
    cache = PieceCache(max_bytes=40_000)
    big = {"panel": "x" * 4_000}  # about 4 kB each; at most an eighth of the budget may be one entry
    for k in range(30):
        assert cache.get(k, lambda: big) is big
    assert cache.nbytes <= 40_000 and len(cache) < 30
    assert cache.get(29, lambda: {"panel": "drawn again"}) is big  # the newest is kept ...
    assert cache.get(0, lambda: {"panel": "drawn again"}) == {"panel": "drawn again"}  # ... the oldest not
    huge = {"panel": "y" * 6_000}  # more than an eighth: drawn, returned, never kept
    assert cache.get("huge", lambda: huge) is huge and cache.get("huge", lambda: {}) == {}


def test_the_memo_drops_the_least_recently_used(gpt2: GPT2) -> None:
    trace = gpt2.engine.trace([t.id for t in gpt2.tokenize("least recently used")])  # a trace of its own
    builds: list[int] = []

    def get(k: int) -> int:
        return memo(trace, ("test", k), lambda: builds.append(k) or k)

    get(0)
    for k in range(1, MEMO_ENTRIES + 10):
        get(k)
        assert get(0) == 0  # read after every new entry: never the oldest in use
    assert builds.count(0) == 1  # drawn once, kept all along
    assert get(1) == 1 and builds.count(1) == 2  # the least recently used were dropped and drawn again
