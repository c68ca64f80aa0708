"""Back-pressure and caching: model runs queue up to a bound, then 503; cached traces never wait."""

from __future__ import annotations

import re
import threading
import time
from contextlib import ExitStack

import numpy as np
from fastapi.testclient import TestClient

from app.limits import RunQueue
from app.loading import load_for_serving
from app.refusals import BUSY_MESSAGE
from app.settings import Settings
from tests.classroom.conftest import HX, TEXT, MakeClient, messages
from tests.web.conftest import parse


def hold_every_slot(client: TestClient, stack: ExitStack) -> RunQueue:
    """Occupy the app's run slots from the test, as long model runs would."""
    queue: RunQueue = client.app.state.run_queue  # type: ignore[attr-defined]
    for _ in range(queue.max_running):
        stack.enter_context(queue.slot())
    return queue


def test_a_full_queue_answers_503_with_retry_after(make_client: MakeClient) -> None:
    client = make_client(max_running=1, queue_size=0)
    client.get("/", params={"text": TEXT})  # cached before the rush

    with ExitStack() as stack:
        queue = hold_every_slot(client, stack)
        page = client.get("/", params={"text": "A brand new sentence"})
        api = client.get("/api/predict", params={"text": "Another new sentence"})
        cached = client.get("/", params={"text": TEXT, "temperature": "1.3"})

    assert page.status_code == 503
    assert int(page.headers["Retry-After"]) >= 1
    wait = int(page.headers["Retry-After"])
    assert wait <= int(page.headers["Refresh"]) <= 2 * wait  # the busy page reloads by itself, spread out
    assert messages(page.text) == [BUSY_MESSAGE]
    assert parse(page.text).one("a", href="")  # "try again now" reloads the same address
    assert api.status_code == 503
    assert api.json() == {"detail": BUSY_MESSAGE}
    assert int(api.headers["Retry-After"]) >= 1
    assert cached.status_code == 200  # a cached trace never waits for the model
    assert queue.stats().refused == 2
    assert client.get("/", params={"text": "A brand new sentence"}).status_code == 200  # free again


def test_a_busy_live_update_keeps_the_page_and_shows_the_message(make_client: MakeClient) -> None:
    client = make_client(max_running=1, queue_size=0)

    with ExitStack() as stack:
        hold_every_slot(client, stack)
        r = client.get("/", params={"text": "Fresh words here", "action": "run"}, headers=HX)

    assert r.status_code == 503  # htmx is configured to swap a 503 ...
    assert r.headers["HX-Retarget"] == "#messages"  # ... into the messages box only
    assert r.headers["HX-Reswap"] == "outerHTML"
    assert parse(r.text).one("div", id="messages")
    assert not parse(r.text).all("html")
    assert messages(r.text) == [BUSY_MESSAGE]


def test_a_run_that_waits_too_long_gets_503(make_client: MakeClient) -> None:
    client = make_client(max_running=1, queue_size=4, queue_timeout=0.2)

    with ExitStack() as stack:
        queue = hold_every_slot(client, stack)
        start = time.perf_counter()
        r = client.get("/api/predict", params={"text": "Waiting in line"})
        waited = time.perf_counter() - start

    assert r.status_code == 503
    assert r.json() == {"detail": BUSY_MESSAGE}
    assert waited >= 0.2
    assert queue.stats().timed_out == 1


def test_identical_requests_run_the_model_once_and_take_one_place(make_client: MakeClient) -> None:
    client = make_client(max_running=1, queue_size=1, concurrency=8)
    codes: list[int] = []

    def ask() -> None:
        codes.append(client.get("/api/predict", params={"text": "Everyone types this"}).status_code)

    with ExitStack() as stack:
        queue = hold_every_slot(client, stack)
        students = [threading.Thread(target=ask) for _ in range(6)]
        for s in students:
            s.start()
        time.sleep(0.5)  # all six are in: one waits for the slot, five wait for its result
    for s in students:
        s.join(timeout=30)

    assert codes == [200] * 6
    assert queue.stats().runs == 1 + 1  # the slot the test held, then the one real run
    assert queue.stats().refused == 0
    assert client.app.state.serving.gpt2.cache.misses == 1  # type: ignore[attr-defined]


def test_sampling_and_view_changes_reuse_the_cached_trace(client: TestClient) -> None:
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    client.get("/", params={"text": TEXT})
    misses = gpt2.cache.misses

    for i in range(10):
        r = client.get(
            "/",
            params={"text": TEXT, "temperature": f"{0.3 + i / 10:.1f}"},
            headers={**HX, "HX-Target": "output"},
        )
        assert r.status_code == 200
    for view in ("embedding", "attention", "mlp", "residual"):
        for layer, head in ((1, 1), (2, 3)):
            params = {"text": TEXT, "view": view, "layer": str(layer), "head": str(head), "top_k": "5"}
            assert client.get("/", params=params, headers=HX).status_code == 200
    assert client.get("/api/predict", params={"text": TEXT, "temperature": "2"}).status_code == 200
    assert client.get("/api/trace", params={"text": TEXT, "names": "logits"}).status_code == 200

    assert gpt2.cache.misses == misses


def test_generating_extends_the_cached_trace(client: TestClient) -> None:
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    client.get("/", params={"text": TEXT})
    runs = client.app.state.run_queue.stats().runs  # type: ignore[attr-defined]

    r = client.get("/", params={"text": TEXT, "action": "generate"}, headers=HX)

    assert r.status_code == 200
    assert client.app.state.run_queue.stats().runs == runs + 1  # type: ignore[attr-defined]
    assert gpt2.cache.misses == 2


def test_stats_report_the_cache_hit_rate_and_the_queue(client: TestClient) -> None:
    client.get("/", params={"text": TEXT})
    client.get("/", params={"text": TEXT, "temperature": "1.5"}, headers={**HX, "HX-Target": "output"})

    stats = client.get("/api/stats").json()

    assert stats["model"] == "tiny"
    assert stats["cache"]["misses"] == 1
    assert stats["cache"]["hits"] >= 1
    assert stats["cache"]["hit_rate"] == round(stats["cache"]["hits"] / (stats["cache"]["hits"] + 1), 4)
    assert stats["cache"]["max_bytes"] == 512 * 2**20
    assert stats["queue"]["runs"] == 1
    assert stats["queue"]["max_running"] == 1 and stats["queue"]["queue_size"] == 64
    assert stats["line"] == {"busy": 0, "waiting": 0, "concurrency": 4, "refused": 0}
    assert stats["rate_limited"] == 0
    assert stats["peak_rss_mb"] >= stats["rss_mb"] > 0


def test_the_queue_counts_the_cpu_its_runs_took_not_their_waiting() -> None:
    queue = RunQueue(max_running=1, queue_size=1, timeout=5)
    with queue.slot() as holding:
        assert holding
        cpu = time.thread_time()
        while time.thread_time() - cpu < 0.05:  # 50 ms of work
            pass
    with queue.slot():
        time.sleep(0.2)  # waiting takes no CPU

    stats = queue.stats()

    assert stats.runs == 2
    assert 0.05 <= stats.run_cpu_s < 0.15


def test_cache_mb_reaches_the_trace_cache() -> None:
    serving = load_for_serving(Settings(model="tiny", fallback="", cache_mb=3))

    assert serving.gpt2.cache.max_bytes == 3 * 2**20


def test_the_cache_is_bounded_by_bytes(make_client: MakeClient) -> None:
    client = make_client()
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    one = gpt2.trace(gpt2.tokenizer.encode("one two three")).nbytes
    gpt2.cache.max_bytes = int(2.5 * one)

    for word in ("four", "five", "six", "seven"):
        gpt2.trace(gpt2.tokenizer.encode(f"one two {word}"))

    assert len(gpt2.cache) == 2
    assert gpt2.cache.nbytes <= gpt2.cache.max_bytes


def test_big_api_answers_are_built_one_at_a_time(make_client: MakeClient) -> None:
    client = make_client(queue_timeout=0.3)
    heavy = client.app.state.lanes["heavy"]  # type: ignore[attr-defined]
    client.get("/api/trace", params={"text": TEXT, "names": "logits"})  # traced and ready

    heavy.busy = 1  # another /api/trace answer is being built
    start = time.perf_counter()
    waited = client.get("/api/trace", params={"text": TEXT, "names": "logits"})
    seconds = time.perf_counter() - start
    other = client.get("/api/predict", params={"text": TEXT})  # the rest of the API is not held up
    heavy.busy = 0
    after = client.get("/api/trace", params={"text": TEXT, "names": "logits"})

    assert waited.status_code == 503
    assert waited.json() == {"detail": BUSY_MESSAGE}
    assert waited.headers["Retry-After"] == "2"
    assert seconds >= 0.3
    assert other.status_code == 200
    assert after.status_code == 200


def test_big_api_answers_wait_their_turn(make_client: MakeClient) -> None:
    client = make_client()
    heavy = client.app.state.lanes["heavy"]  # type: ignore[attr-defined]
    heavy.busy = 1  # another /api/trace answer is being built, for 0.3 s
    threading.Timer(0.3, lambda: setattr(heavy, "busy", 0)).start()

    r = client.get("/api/trace", params={"text": TEXT, "names": "embed.*"})

    assert r.status_code == 200
    assert sorted(r.json()["tensors"]) == ["embed.position", "embed.sum", "embed.token"]


def test_no_room_to_wait_for_a_big_answer_is_503_at_once(make_client: MakeClient) -> None:
    client = make_client(queue_size=0)
    client.app.state.lanes["heavy"].busy = 1  # type: ignore[attr-defined]

    start = time.perf_counter()
    r = client.get("/api/trace", params={"text": TEXT})

    assert r.status_code == 503
    assert time.perf_counter() - start < 5


def test_students_pressing_generate_at_once_share_one_model_run(make_client: MakeClient) -> None:
    """Texts waiting for the model when a slot frees go into one run together; each page shows the numbers
    a run of its own text alone gives."""
    client = make_client(max_running=1, queue_size=8, concurrency=8)
    gpt2 = client.app.state.serving.gpt2  # type: ignore[attr-defined]
    texts = [TEXT, "The old lighthouse keeper", "A small green frog sat"]
    for text in texts:
        assert client.get("/", params={"text": text}).status_code == 200
    runs, traced = gpt2.runs, gpt2.texts
    slots = client.app.state.run_queue.stats().runs  # type: ignore[attr-defined]
    pages: dict[str, str] = {}

    def generate(text: str) -> None:
        r = client.get("/", params={"text": text, "action": "generate", "view": "mlp"}, headers=HX)
        assert r.status_code == 200
        pages[text] = r.text

    with ExitStack() as stack:
        queue = hold_every_slot(client, stack)
        students = [threading.Thread(target=generate, args=(text,)) for text in texts]
        for s in students:
            s.start()
        deadline = time.monotonic() + 30
        while queue.stats().waiting < len(texts) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.stats().waiting == len(texts)
    for s in students:
        s.join(timeout=60)

    assert (gpt2.runs, gpt2.texts) == (runs + 1, traced + 3)  # one run carried all three texts
    assert queue.stats().runs == slots + 2  # the slot the test held, then the one shared run
    for text in texts:
        ids = [t.id for t in gpt2.tokenize(text)]
        generated = int(re.search(r'name="gen" value="(\d+)"', pages[text]).group(1))  # type: ignore[union-attr]
        alone = gpt2.engine.trace([*ids, generated])  # the same text run by itself, from scratch
        shared = gpt2.cache.peek((*ids, generated))
        assert shared is not None
        for name in alone.names:
            np.testing.assert_allclose(shared[name], alone[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_the_slider_resting_is_answered_while_pages_fill_the_line(make_client: MakeClient) -> None:
    client = make_client(queue_size=0)
    client.get("/", params={"text": TEXT})  # the text is traced and drawn
    line = client.app.state.lanes["line"]  # type: ignore[attr-defined]
    line.busy = line.concurrency  # every turn taken by pages being drawn, no room to wait

    share = {"HX-Request": "true", "HX-Target": "share", "HX-Trigger": "temperature"}
    settled = client.get("/", params={"text": TEXT, "temperature": "1.5"}, headers=share)
    panel = client.get("/", params={"text": TEXT, "view": "mlp"}, headers={**HX, "HX-Target": "page"})
    line.busy = 0

    assert settled.status_code == 200  # the permalink follows the slider: it does not wait behind pages
    assert "temperature=1.5" in parse(settled.text).one("input", id="permalink")["value"]
    assert panel.status_code == 503  # a page to draw waits in the line, here full
    stats = client.get("/api/stats").json()["lanes"]
    assert stats["settle"]["concurrency"] == 2 and stats["line"]["refused"] == 1
