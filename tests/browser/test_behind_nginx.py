"""The page in chromium through nginx with deploy/'s site: a text keeps one spelling and one replica."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.cluster import REPLICA, Cluster
from tests.browser.conftest import move_slider
from tests.deploy.conftest import need_nginx

pytestmark = [pytest.mark.browser, pytest.mark.nginx]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    need_nginx()
    with Cluster(2, model="tiny", prefix=Path(tmp_path_factory.mktemp("cluster"))) as started:
        yield started


def test_in_chromium_a_students_text_its_live_updates_and_links_reach_one_replica(
    cluster: Cluster, browser: Any
) -> None:
    """htmx writes a text as encodeURIComponent does; the page's own links must spell it the same way, or
    nginx would hash the page and its live updates to different replicas."""
    text = "Hello, world! (A student's own* text) ~ café"
    answers: list[tuple[str, str, str]] = []  # (the request's text, as spelt in its URL, its replica)

    def seen(response: Any) -> None:
        replica = response.headers.get(REPLICA.lower())  # Playwright gives header names in lower case
        query = urlsplit(response.url).query
        if (asked := parse_qs(query).get("text")) and replica:
            spelt = next(p[5:] for p in query.split("&") if p.startswith("text="))
            answers.append((asked[0], spelt, replica))

    page = browser.new_context().new_page()
    page.on("response", seen)
    page.goto(cluster.base + "/")
    page.locator("#text").fill(text)
    page.get_by_role("button", name="Run").click()  # htmx: the new text's page as a fragment
    page.wait_for_function("() => location.search.includes('Hello')")
    page.reload()  # the address the app pushed, as a student shares it, opened in full
    move_slider(page, "2.5")  # shown at once; the permalink follows once the slider rests
    page.wait_for_function("() => location.search.includes('temperature=2.5')")
    page.locator(".navigator nav[aria-label=Head] a", has_text="2").click()  # a link the page wrote
    page.wait_for_function("() => location.search.includes('head=2')")
    page.context.close()

    mine = [(spelt, replica) for asked, spelt, replica in answers if asked == text]
    assert len(mine) >= 4, answers  # the Run, the permalink, the settled slider's update, the link
    assert len({spelt for spelt, _ in mine}) == 1, mine  # one spelling, whoever wrote the URL
    assert len({replica for _, replica in mine}) == 1, mine
