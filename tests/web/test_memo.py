"""Pictures kept with a trace are shared between students, never their links, and never grow without bound."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.state import STEPS
from app.views.common import MEMO_ENTRIES
from model import GPT2
from tests.web.conftest import parse

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
    kept = gpt2.trace([t.id for t in gpt2.tokenize(text)]).derived["views"]
    assert len(kept) == MEMO_ENTRIES
