"""The live page in chromium: slider, Generate, block and head navigation, and JavaScript off."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import open_page

pytestmark = pytest.mark.browser

TEXT = "Data visualization empowers users to"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query, keep_blank_values=True)


def bar_probs(page: Any) -> list[str]:
    return page.locator("#output tr[data-prob]").evaluate_all("rows => rows.map(r => r.dataset.prob)")


def test_slider_updates_the_probabilities_and_the_url(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    before = bar_probs(page)
    page.locator("#temperature").fill("2.5")
    page.wait_for_selector('#output[data-temperature="2.5"]')
    after = bar_probs(page)
    assert after != before
    assert float(after[0]) < float(before[0])  # a hotter temperature flattens the distribution
    assert page.locator("#temperature-value").inner_text() == "2.50"
    page.wait_for_function("() => location.search.includes('temperature=2.5')")
    assert query(page.url)["temperature"] == ["2.5"]
    assert errors == []
    page.context.close()


def test_slider_swaps_only_the_ribbons_of_the_overview(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    page.evaluate("() => { document.querySelector('#overview .sankey').dataset.mark = 'kept'; }")
    fan = "#overview svg.sankey svg#fan rect.cand[data-prob]"
    before = page.locator(fan).evaluate_all("rs => rs.map(r => r.dataset.prob)")
    page.locator("#temperature").fill("3")
    page.wait_for_selector('#output[data-temperature="3"]')
    after = page.locator(fan).evaluate_all("rs => rs.map(r => r.dataset.prob)")
    assert len(after) == len(before) and after != before
    shown = page.locator("#output tr[data-prob]").evaluate_all("rows => rows.map(r => r.dataset.prob)")
    assert float(after[0]) == pytest.approx(float(shown[0]), rel=1e-8)  # ribbons and bars agree
    # the rest of the overview was not redrawn: the mark put on it before the move is still there
    assert page.locator("#overview .sankey").get_attribute("data-mark") == "kept"
    assert errors == []
    page.context.close()


def test_top_k_updates_the_kept_set(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    page.locator("#top_k").fill("3")
    page.wait_for_selector('#output[data-kept="3"]')
    assert page.locator("#output tr.cut").count() == 7
    assert errors == []
    page.context.close()


def test_generate_appends_a_token_and_updates_the_url(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    chips = page.locator("#tokens .chip")
    n = chips.count()
    drawn = page.locator("#output").get_attribute("data-sampled")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"() => document.querySelectorAll('#tokens .chip').length === {n + 1}")
    assert chips.last.get_attribute("data-id") == drawn
    assert "gen" in (chips.last.get_attribute("class") or "")
    page.wait_for_function("() => location.search.includes('gen=')")
    assert query(page.url)["gen"] == [drawn]
    assert page.locator("#tokens .timeline li").count() == 1
    page.get_by_role("button", name="Greedy").click()
    page.wait_for_function(f"() => document.querySelectorAll('#tokens .chip').length === {n + 2}")
    assert len(query(page.url)["gen"][0].split(",")) == 2
    assert errors == []
    page.context.close()


def test_block_and_head_navigation_change_the_heatmap(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}&step=probs")
    cells = "#panel svg.main-map rect[data-value]"
    before = page.locator(cells).evaluate_all("rs => rs.map(r => r.dataset.value)")
    page.locator(".navigator nav[aria-label=Head] a", has_text="3").click()
    page.wait_for_selector('.sankey[data-head="3"]')
    after_head = page.locator(cells).evaluate_all("rs => rs.map(r => r.dataset.value)")
    assert after_head != before
    assert query(page.url)["head"] == ["3"]
    page.locator(".navigator nav[aria-label=Block] a", has_text="2").click()
    page.wait_for_selector('.sankey[data-layer="2"]')
    assert page.locator("#panel svg.main-map").get_attribute("data-name") == "block1.attn.probs"
    after_block = page.locator(cells).evaluate_all("rs => rs.map(r => r.dataset.value)")
    assert after_block != after_head
    assert query(page.url)["layer"] == ["2"] and query(page.url)["head"] == ["3"]
    assert errors == []
    page.context.close()


def test_navigation_keeps_a_temperature_set_by_the_slider(server: str, browser: Any) -> None:
    page, _ = open_page(browser, f"{server}/?text={TEXT}")
    page.locator("#temperature").fill("3.3")
    page.wait_for_selector('#output[data-temperature="3.3"]')
    page.locator(".navigator nav[aria-label=Head] a", has_text="2").click()
    page.wait_for_selector('.sankey[data-head="2"]')
    assert page.locator("#output").get_attribute("data-temperature") == "3.3"
    assert query(page.url)["temperature"] == ["3.3"]
    page.context.close()


def test_works_with_javascript_off(server: str, browser: Any) -> None:
    page, _ = open_page(browser, f"{server}/?text={TEXT}", java_script_enabled=False)
    page.locator("#temperature").fill("1.9")
    page.get_by_role("button", name="Apply").click()  # shown only without JavaScript
    page.wait_for_selector('#output[data-temperature="1.9"]')
    assert query(page.url)["temperature"] == ["1.9"]
    n = page.locator("#tokens .chip").count()
    page.get_by_role("button", name="Generate").click()
    page.wait_for_load_state()
    assert page.locator("#tokens .chip").count() == n + 1
    assert "gen" in query(page.url)
    page.locator(".navigator nav[aria-label=Head] a", has_text="2").click()
    page.wait_for_load_state()
    assert query(page.url)["head"] == ["2"] and query(page.url)["temperature"] == ["1.9"]
    page.locator("#text").fill("On the deserted planet they discovered a")
    page.get_by_role("button", name="Run").click()
    page.wait_for_load_state()
    assert page.locator("#tokens .chip").count() == 7
    assert "gen" not in query(page.url)  # new text: the generated tokens are gone
    assert query(page.url)["temperature"] == ["1.9"]
    page.context.close()


def test_narrow_screen_has_no_page_wide_scroll(server: str, browser: Any) -> None:
    for view in ("attention", "embedding", "mlp", "residual"):
        ctx = browser.new_context(viewport={"width": 360, "height": 800})
        page = ctx.new_page()
        page.goto(f"{server}/?text={TEXT}&view={view}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, view
        ctx.close()
