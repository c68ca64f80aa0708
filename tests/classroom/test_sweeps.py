"""Sweeps (many model runs for one page: which heads matter, the patching grid) never starve the other pages:
their runs go behind every other run waiting, they wait in a lane of their own, at most `sweep_concurrency`
are computed at once, each is computed once per text, and a page whose sweep has no turn in time is drawn
without it, says so, and is kept by no cache."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from app.admission import _sweeping
from app.limits import RunQueue
from tests.classroom.conftest import MakeClient
from tests.web.conftest import parse

TEXT = "The doctor said that he"


def test_a_background_run_lets_a_waiting_page_run_go_first() -> None:
    queue = RunQueue(max_running=1, queue_size=10, timeout=5)
    order: list[str] = []

    def run(name: str, background: bool) -> None:
        with queue.slot(background=background):
            order.append(name)

    with queue.slot():  # the model is busy
        sweep = threading.Thread(target=run, args=("sweep", True))
        sweep.start()
        while queue.stats().waiting < 1:
            time.sleep(0.01)
        page = threading.Thread(target=run, args=("page", False))
        page.start()
        while queue.stats().waiting < 2:
            time.sleep(0.01)
    page.join(5)
    sweep.join(5)
    assert order == ["page", "sweep"]  # the sweep's run came first, the page's went first


def test_a_background_run_goes_at_once_when_no_one_waits() -> None:
    queue = RunQueue(max_running=1, queue_size=10, timeout=5)
    with queue.slot(background=True) as holding:
        assert holding and queue.stats().running == 1


@pytest.mark.parametrize(
    ("query", "headers", "sweeping"),
    [
        (b"text=a&view=heads", [], True),
        (b"text=a&view=compare&text2=b", [], True),
        (b"text=a&view=Heads", [], True),
        (b"text=a&view=heads", [(b"hx-target", b"output")], False),  # a live update draws no sweep
        (b"text=a&view=attention", [], False),
        (b"text=view%3Dheads", [], False),
    ],
)
def test_the_pages_that_may_sweep_wait_in_the_sweeps_lane(query, headers, sweeping) -> None:
    assert _sweeping({"query_string": query, "headers": headers}) is sweeping


def test_a_sweep_is_computed_once_for_everyone(make_client: MakeClient) -> None:
    client = make_client()
    sweeps = client.app.state.site.sweeps  # type: ignore[attr-defined]
    params = {"text": TEXT, "view": "heads"}
    answers: list[int] = []
    threads = [
        threading.Thread(
            target=lambda k=k: answers.append(client.get("/", params={**params, "seed": str(k)}).status_code)
        )
        for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * 4
    assert sweeps.computed == 1  # four pages at once, one sweep (single flight)
    stats = client.get("/api/stats").json()
    assert stats["sweeps"]["computed"] == 1 and stats["sweeps"]["entries"] == 1
    assert stats["lanes"]["sweeps"]["concurrency"] == 2  # sweep_concurrency + 1


def test_a_sweep_without_a_turn_is_left_out_and_said_and_nothing_keeps_the_page(
    make_client: MakeClient,
) -> None:
    client = make_client(sweep_wait=0.2)
    sweeps = client.app.state.site.sweeps  # type: ignore[attr-defined]
    params = {"text": TEXT, "view": "heads"}
    sweeps._turns.acquire()  # another sweep is being computed
    try:
        busy = client.get("/", params=params)
    finally:
        sweeps._turns.release()
    assert busy.status_code == 200
    assert busy.headers["cache-control"] == "no-store"
    page = parse(busy.text)
    assert page.one("p", **{"class": "note sweep-problem"}, role="status")
    assert "busy with other sweeps" in page.all_text
    assert not page.all("svg", **{"class": "head-grid"})
    assert sweeps.refused == 1

    again = client.get("/", params=params)  # neither the page cache nor the pieces kept the page without it
    assert again.status_code == 200 and parse(again.text).one("svg", **{"class": "head-grid"})
    assert "no-store" not in again.headers["cache-control"]


def test_a_text_too_long_for_a_sweep_gets_a_sentence_not_the_work(make_client: MakeClient) -> None:
    client: TestClient = make_client(sweep_tokens=4)
    r = client.get("/", params={"text": TEXT, "view": "heads"})
    assert r.status_code == 200
    text = parse(r.text).all_text
    assert (
        "The text is 5 tokens long; this server sweeps texts of at most 4 tokens (each sweep is 8 runs"
        in text
    )
    assert client.app.state.site.sweeps.computed == 0  # type: ignore[attr-defined]
    compare = client.get("/", params={"text": TEXT, "text2": "The doctor said that she", "view": "compare"})
    assert compare.status_code == 200
    assert "each sweep is 15 runs" in parse(compare.text).all_text  # 3 sites x 5 positions
    assert not parse(compare.text).all("svg", **{"class": "patch-grid"})
