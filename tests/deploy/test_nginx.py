"""nginx with deploy/'s site file in front of three replicas: text affinity, the front cache, a replica
killed in the middle of a run, and the client's real address reaching the rate limit."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import httpx
import pytest

from app.state import REFERENCE_PROMPTS, quote_text
from bench.cluster import REPLICA, Cluster
from tests.deploy.conftest import need_nginx

pytestmark = pytest.mark.nginx

TEXTS = [f"Student {i} in row {i % 7} asks about rivers" for i in range(20)]
LIVE = {"HX-Request": "true", "HX-Target": "output"}


def model_runs(cluster: Cluster) -> int:
    """Traces computed over all replicas (trace cache misses), asked of each replica directly."""
    return sum(r.stats()["cache"]["misses"] for r in cluster.replicas)


def pages_seen(cluster: Cluster) -> int:
    """Requests for `/` that reached Python on any replica (the app's page cache counts each)."""
    return sum(r.stats()["pages"]["hits"] + r.stats()["pages"]["misses"] for r in cluster.replicas)


def requests_about(text: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """What a student's browser asks about one text: the page, a live update, a download, the API."""
    return [
        ("/", {"text": text}, {}),
        ("/", {"text": text, "temperature": "1.3", "top_k": "", "top_p": "", "seed": "0"}, LIVE),
        ("/export/tokens.csv", {"text": text}, {}),
        ("/api/predict", {"text": text, "n": "3"}, {}),
    ]


def test_every_request_about_a_text_reaches_the_same_replica(cluster: Cluster) -> None:
    runs = model_runs(cluster)
    answered_by: dict[str, Counter[str]] = {text: Counter() for text in TEXTS}

    with httpx.Client(base_url=cluster.base, timeout=30) as client:
        for _ in range(2):
            for text in TEXTS:
                for path, params, headers in requests_about(text):
                    r = client.get(path, params=params, headers=headers)
                    assert r.status_code == 200, (path, r.text[:300])
                    answered_by[text][r.headers[REPLICA]] += 1

    assert all(len(names) == 1 and sum(names.values()) == 8 for names in answered_by.values())
    owners = Counter(next(iter(names)) for names in answered_by.values())
    assert len(owners) >= 2, owners  # the hash spreads 20 texts over the replicas
    assert set(owners) <= {r.name for r in cluster.replicas}
    # so each text was traced once in the whole cluster, whatever asked for it and how often
    assert model_runs(cluster) - runs == len(TEXTS)


def test_a_second_request_for_an_examples_page_is_answered_by_nginx_never_by_python(
    cluster: Cluster,
) -> None:
    url = "/?text=" + quote_plus(REFERENCE_PROMPTS[1])
    with httpx.Client(base_url=cluster.base, timeout=30) as client:
        seen = pages_seen(cluster)
        first = client.get(url)
        assert first.status_code == 200
        assert first.headers["Cache-Control"] == "public, max-age=600"
        assert first.headers["X-Cache-Status"] == "MISS"
        assert pages_seen(cluster) == seen + 1

        again = client.get(url)
        assert again.headers["X-Cache-Status"] == "HIT"
        assert again.content == first.content
        assert pages_seen(cluster) == seen + 1  # Python never saw it

        # the same link as a live update is another answer (Vary: HX-Request, HX-Target): kept apart
        live = [client.get(url, headers=LIVE) for _ in range(2)]
        assert [r.headers["X-Cache-Status"] for r in live] == ["MISS", "HIT"]
        assert 'id="output"' in live[0].text and "<html" not in live[0].text and "<html" in first.text
        assert pages_seen(cluster) == seen + 2

        # a student's own text is private: every request for it reaches a replica
        own = [client.get("/", params={"text": TEXTS[0] + " again"}) for _ in range(2)]
        assert [r.headers["Cache-Control"] for r in own] == ["private, no-cache"] * 2
        assert pages_seen(cluster) == seen + 4


def test_killing_a_replica_mid_run_loses_no_get_and_it_takes_its_texts_back(cluster: Cluster) -> None:
    texts = [f"A lecture hall of {i} students reads this" for i in range(30)]
    with httpx.Client(base_url=cluster.base, timeout=30) as client:
        owner = {t: client.get("/api/predict", params={"text": t, "n": "1"}).headers[REPLICA] for t in texts}
    victim = cluster.by_name(Counter(owner.values()).most_common(1)[0][0])
    its_texts = [t for t in texts if owner[t] == victim.name]

    # a bounded run: 240 GETs (pages and API answers) from 4 clients; the victim dies after the 60th
    answers: list[tuple[int, str, int, str]] = []  # (order, text, status, replica)
    done = threading.Semaphore(0)
    local = threading.local()
    clients: list[httpx.Client] = []

    def get(i: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=cluster.base, timeout=30)
            clients.append(local.client)
        text = texts[i % len(texts)]
        path, params = ("/", {"text": text}) if i % 2 else ("/api/predict", {"text": text, "n": "5"})
        try:
            r = local.client.get(path, params=params)
            answers.append((i, text, r.status_code, r.headers.get(REPLICA, "")))
        except httpx.HTTPError as err:
            answers.append((i, text, 0, type(err).__name__))
        done.release()

    with ThreadPoolExecutor(4) as pool:
        for i in range(240):
            pool.submit(get, i)
        for _ in range(60):
            done.acquire()
        killed_after = len(answers)
        victim.kill()
    for c in clients:
        c.close()
    assert 60 <= killed_after < 240

    assert len(answers) == 240
    assert [a for a in answers if a[2] != 200] == []
    later = [a for a in sorted(answers)[killed_after + 8 :] if a[1] in its_texts]
    assert later and all(replica != victim.name for *_, replica in later)  # the others answered for it
    # nginx's log shows each retry (the dead replica's 502, then the next one's 200) and no student's text
    log = cluster.nginx_log.read_text()
    assert re.search(rf'"127\.0\.0\.1:{victim.port}, 127\.0\.0\.1:\d+" "502, 200"', log)
    assert not [t for t in texts if quote_plus(t) in log or quote_text(t) in log]

    # it comes back: once nginx's fail_timeout (10 s) has passed it is tried again and takes its texts
    victim.start()
    victim.wait()
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=cluster.base, timeout=30) as client:
        back: dict[str, str] = {}
        while time.monotonic() < deadline:
            back = {
                t: client.get("/api/predict", params={"text": t, "n": "1"}).headers[REPLICA] for t in texts
            }
            if back == owner:
                break
            time.sleep(1)
    assert back == owner


def test_the_rate_limit_counts_the_students_address_not_nginxs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    need_nginx()
    limited = ("--rate-limit", "0.01", "--rate-burst", "3")
    prefix = tmp_path_factory.mktemp("limited")
    with Cluster(1, model="tiny", serve_args=limited, prefix=prefix) as cluster:

        def client(address: str) -> httpx.Client:
            # another loopback address than nginx's own (127.0.0.1), as a student's machine would be
            transport = httpx.HTTPTransport(local_address=address)
            return httpx.Client(base_url=cluster.base, transport=transport, timeout=30)

        ask = {"text": "Rate limits count people", "n": "1"}
        with client("127.0.0.2") as first, client("127.0.0.3") as second:
            assert [first.get("/api/predict", params=ask).status_code for _ in range(4)] == [
                200,
                200,
                200,
                429,
            ]
            # a forged X-Forwarded-For does not help: nginx replaces it with the address it saw
            forged = first.get("/api/predict", params=ask, headers={"X-Forwarded-For": "127.0.0.9"})
            assert forged.status_code == 429
            assert second.get("/api/predict", params=ask).status_code == 200
