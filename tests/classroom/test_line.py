"""The line: a few requests are worked on at once, the rest wait their turn, past its length 503."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from app.refusals import BUSY_MESSAGE
from tests.classroom.conftest import TEXT, MakeClient, messages


def occupy(client: TestClient, text: str) -> threading.Thread:
    """A request that takes a turn and then waits for the model (whose slot the test holds)."""
    thread = threading.Thread(target=client.get, args=("/",), kwargs={"params": {"text": text}})
    thread.start()
    line = client.app.state.work_line  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while line.busy < line.concurrency and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread


def test_past_the_line_the_answer_is_busy(make_client: MakeClient) -> None:
    client = make_client(concurrency=1, queue_size=1)
    client.get("/", params={"text": TEXT})  # in the page cache: no turn needed for this one
    line = client.app.state.work_line  # type: ignore[attr-defined]

    with client.app.state.run_queue.slot():  # type: ignore[attr-defined]
        first = occupy(client, "The model is busy with this one")
        second = threading.Thread(target=client.get, args=("/",), kwargs={"params": {"text": "Next"}})
        second.start()
        while not line.waiting:  # the line is full now: one worked on, one waiting
            time.sleep(0.01)
        page = client.get("/", params={"text": TEXT, "view": "mlp"})
        api = client.get("/api/predict", params={"text": TEXT})
        cached = client.get("/", params={"text": TEXT})
        free = [client.get(p).status_code for p in ("/healthz", "/api/stats", "/static/style.css")]
    first.join(timeout=30)
    second.join(timeout=30)

    assert page.status_code == 503
    assert messages(page.text) == [BUSY_MESSAGE]
    assert int(page.headers["Retry-After"]) >= 1
    assert api.status_code == 503
    assert api.json() == {"detail": BUSY_MESSAGE}
    assert cached.status_code == 200  # a page already drawn is sent again without waiting
    assert free == [200, 200, 200]
    assert line.refused == 2
    assert client.get("/", params={"text": TEXT, "view": "mlp"}).status_code == 200  # free again


def test_a_request_that_waits_too_long_is_busy(make_client: MakeClient) -> None:
    client = make_client(concurrency=1, queue_size=5, queue_timeout=0.3)

    with client.app.state.run_queue.slot():  # type: ignore[attr-defined]
        first = occupy(client, "Holding the only turn")
        start = time.perf_counter()
        r = client.get("/api/predict", params={"text": TEXT})
        waited = time.perf_counter() - start
    first.join(timeout=30)

    assert r.status_code == 503
    assert waited >= 0.3
    assert len(client.app.state.work_line.waiting) == 0  # type: ignore[attr-defined]


def test_everyone_in_line_is_served_in_turn(make_client: MakeClient) -> None:
    client = make_client(concurrency=1, queue_size=20)
    codes: list[int] = []

    def ask(n: int) -> None:
        codes.append(client.get("/api/predict", params={"text": f"{TEXT} {n}"}).status_code)

    with client.app.state.run_queue.slot():  # type: ignore[attr-defined]
        first = occupy(client, "Holding the only turn")
        students = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
        for s in students:
            s.start()
        time.sleep(0.3)
        assert len(client.app.state.work_line.waiting) == 8  # type: ignore[attr-defined]
    for s in [first, *students]:
        s.join(timeout=60)

    line = client.app.state.work_line  # type: ignore[attr-defined]
    assert codes == [200] * 8
    assert (line.busy, len(line.waiting), line.refused) == (0, 0, 0)


def test_startup_shortens_the_gil_switch_interval(client: TestClient) -> None:
    import sys

    from app.limits import SWITCH_INTERVAL

    assert client.get("/healthz").status_code == 200
    assert sys.getswitchinterval() == SWITCH_INTERVAL == 0.001
