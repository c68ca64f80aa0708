"""Bounded by design: a trace's bytes, the exports' own lane and cache."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.refusals import BUSY_MESSAGE
from model.trace import tokens_within, trace_bytes
from tests.classroom.conftest import TEXT, MakeClient, messages


@pytest.mark.parametrize("n", [1, 5, 17, 40])
def test_a_trace_weighs_what_trace_bytes_says(client: TestClient, n: int) -> None:
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    trace = gpt2.engine.trace(list(range(100, 100 + n)))
    assert trace.nbytes == trace_bytes(gpt2.config, n)


def test_a_text_whose_trace_passes_the_bound_gets_a_clear_message(make_client: MakeClient) -> None:
    client = make_client(max_trace_mb=1)
    cfg = client.app.state.serving.gpt2.config  # type: ignore[attr-defined]
    most = tokens_within(cfg, 2**20)
    assert trace_bytes(cfg, most) <= 2**20 < trace_bytes(cfg, most + 1)
    long = " ".join(["word"] * (most + 5))
    page = client.get("/", params={"text": long})
    assert page.status_code == 400
    assert f"this server takes at most {most}. Shorten it and try again." in " ".join(messages(page.text))
    api = client.get("/api/predict", params={"text": long})
    assert api.status_code == 400 and api.json()["detail"].endswith(f"the most is {most}")
    assert client.get("/", params={"text": " ".join(["word"] * (most - 1))}).status_code == 200


def test_a_page_is_answered_while_exports_fill_their_lane(make_client: MakeClient) -> None:
    client = make_client(export_concurrency=1, export_queue=2, queue_timeout=20)
    exports = client.app.state.lanes["exports"]  # type: ignore[attr-defined]
    exports.busy = 1  # a download is being rendered
    got: list[int] = []
    waiting = [
        threading.Thread(
            target=lambda k=k: got.append(
                client.get("/export/attention.png", params={"text": f"{TEXT} {k}"}).status_code
            )
        )
        for k in range(2)
    ]
    for t in waiting:
        t.start()
    deadline = time.monotonic() + 10
    while len(exports.waiting) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(exports.waiting) == 2  # the lane's line is full
    refused = client.get("/export/attention.svg", params={"text": TEXT})
    page = client.get("/", params={"text": "A page while the exports wait", "view": "mlp"})
    api = client.get("/api/predict", params={"text": TEXT})
    exports.busy = 0
    for t in waiting:
        t.join(timeout=60)

    assert refused.status_code == 503 and BUSY_MESSAGE.split(":")[0] in refused.text
    assert page.status_code == 200 and api.status_code == 200
    assert got == [200, 200]
    stats = client.get("/api/stats").json()
    assert stats["lanes"]["exports"]["refused"] == 1 and stats["lanes"]["line"]["refused"] == 0


def test_an_export_asked_again_is_sent_from_the_cache(client: TestClient) -> None:
    params = {"text": "Cached exports", "step": "probs"}
    first = client.get("/export/attention.png", params=params)
    before = client.get("/api/stats").json()["exports"]
    again = client.get("/export/attention.png", params=params)
    after = client.get("/api/stats").json()["exports"]
    assert first.status_code == again.status_code == 200 and first.content == again.content
    assert (after["hits"] - before["hits"], after["misses"] - before["misses"]) == (1, 0)
    assert 0 < after["bytes"] <= after["max_bytes"]
