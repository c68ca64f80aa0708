"""The live page in chromium: slider, Generate, block and head navigation, and JavaScript off."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from app.views.slider import stops_for
from tests.browser.conftest import SHOWN_PROBS, move_slider, open_page, shown_count

pytestmark = pytest.mark.browser

TEXT = "Data visualization empowers users to"


# the overview's ribbons at the temperature the slider shows
FAN_PROBS = """() => [...document.querySelectorAll('#fan g.at')]
    .filter(g => getComputedStyle(g).visibility === 'visible')
    .flatMap(g => [...g.querySelectorAll('rect.cand')].map(r => Number(r.dataset.prob)))"""


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query, keep_blank_values=True)


def api_probs(server: str, temperature: str, **filters: str) -> list[float]:
    """/api/predict's probabilities of the ten likeliest tokens (after the filter, as the table shows)."""
    params = {"text": TEXT, "temperature": temperature, "n": "10", **filters}
    return [c["prob"] for c in httpx.get(f"{server}/api/predict", params=params).json()["top"]]


def test_the_slider_shows_every_stop_with_no_request(server: str, browser: Any) -> None:
    """Moving the temperature across every stop changes the bars, the ribbons and the drawn token at once,
    without asking the server; each stop shows what /api/predict says for that temperature."""
    page, errors = open_page(browser, f"{server}/?text={TEXT}&top_k=6&temperature=0.05")
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r))
    page.locator("input[name=temperature]:checked").focus()
    fans = []
    for k, stop in enumerate(stops_for(0.05)):
        if k:
            page.keyboard.press("ArrowRight")  # a radio group: the arrow keys walk the stops
        assert page.locator("input[name=temperature]:checked").get_attribute("value") == stop.text
        shown = page.evaluate(SHOWN_PROBS)
        assert shown[:10] == pytest.approx(api_probs(server, stop.text, top_k="6"), rel=1e-9, abs=1e-15)
        fans.append(page.evaluate(FAN_PROBS))
    asked = [r for r in sent if "/static/favicon" not in r.url]  # (the browser's own icon aside)
    # nothing but the permalink's update when the slider rests: the output never waited on the server
    assert [r.url for r in asked if r.headers.get("hx-target") != "share"] == []
    assert len({tuple(f) for f in fans}) == len(fans)  # and the ribbons moved at every stop
    assert fans[-1][0] < fans[0][0]  # hotter: the likeliest gets less
    assert errors == []
    page.context.close()


def test_the_permalink_follows_once_the_slider_rests(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r))
    page.locator("input[name=temperature]:checked").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")  # 1 -> 1.2 -> 1.5 -> 2 -> 2.5 -> 3.5, quickly
    page.wait_for_function("() => location.search.includes('temperature=3.5')")
    page.wait_for_timeout(800)
    asked = [r for r in sent if "/static/favicon" not in r.url]  # (the browser's own icon aside)
    assert len(asked) == 1 and asked[0].headers["hx-target"] == "share"  # one small request, when it rests
    assert query(page.url)["temperature"] == ["3.5"]
    assert "temperature=3.5" in page.locator("#permalink").input_value()
    assert "temperature=3.5" in page.locator("#output-downloads a").first.get_attribute("href")
    assert errors == []
    page.context.close()


def test_the_top_bar_at_temperature_five_keeps_a_fifth_of_its_track(server: str, browser: Any) -> None:
    page, _ = open_page(browser, f"{server}/?text={TEXT}")
    move_slider(page, "5")
    page.wait_for_function("() => document.getAnimations().every(a => a.playState !== 'running')")
    widths = page.evaluate(
        """() => [...document.querySelectorAll('#output td.p .at')]
            .filter(e => getComputedStyle(e).visibility === 'visible')
            .map(e => [e.querySelector('rect.grow').getBoundingClientRect().width,
                       e.querySelector('rect.track').getBoundingClientRect().width])"""
    )
    bar, track = widths[0]
    assert track > 0 and bar / track >= 0.2
    page.context.close()


def test_top_k_updates_the_kept_set(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}")
    page.evaluate("() => { document.querySelector('#overview .sankey').dataset.mark = 'kept'; }")
    page.locator("#top_k").fill("3")
    page.wait_for_selector('#output[data-kept="3"]')
    # the rest of the overview was not redrawn: the mark put on it before the change is still there
    assert page.locator("#overview .sankey").get_attribute("data-mark") == "kept"
    assert shown_count(page, "#output td.p .at.cut") == 7
    assert shown_count(page, "#output td.p .at.first-cut") == 1  # the cut line, above the fourth
    assert shown_count(page, "#fan line.cut-line") == 1  # and across the fan
    move_slider(page, "0.2")  # the filter stays as the slider moves
    assert shown_count(page, "#output td.p .at.cut") == 7
    assert errors == []
    page.context.close()


def test_the_top_p_slider_sets_the_filter_and_its_typed_field_follows(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={TEXT}&temperature=0.05")
    page.locator("#top_p_slider").fill("0.5")
    page.wait_for_function("() => location.search.includes('top_p=0.5')")
    assert page.locator("#top_p").input_value() == "0.5"
    kept = int(page.locator("#output").get_attribute("data-kept"))
    assert shown_count(page, "#output td.p .at.first-cut") == (1 if kept < 10 else 0)
    page.locator("#top_p").fill("0.9")  # the exact value, typed: the slider follows
    page.wait_for_function("() => location.search.includes('top_p=0.9')")
    assert page.locator("#top_p_slider").input_value() == "0.9"
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
    page, _ = open_page(browser, f"{server}/?text={TEXT}&temperature=3.3")  # a link's own: an extra stop
    move_slider(page, "0.4")
    page.locator(".navigator nav[aria-label=Head] a", has_text="2").click()  # right away: before it rests
    page.wait_for_selector('.sankey[data-head="2"]')
    assert page.locator("#output").get_attribute("data-temperature") == "0.4"
    assert page.locator("input[name=temperature]:checked").get_attribute("value") == "0.4"
    assert query(page.url)["temperature"] == ["0.4"]
    page.context.close()


def test_works_with_javascript_off(server: str, browser: Any) -> None:
    page, _ = open_page(browser, f"{server}/?text={TEXT}", java_script_enabled=False)
    move_slider(page, "2")  # the stylesheet shows the stop at once, with no script at all
    assert page.evaluate(SHOWN_PROBS)[:10] == pytest.approx(api_probs(server, "2"), rel=1e-9)
    page.get_by_role("button", name="Apply").click()  # shown only without JavaScript
    page.wait_for_selector('#output[data-temperature="2"]')
    assert query(page.url)["temperature"] == ["2"]
    n = page.locator("#tokens .chip").count()
    with page.expect_navigation():  # the next page loaded, not the one still shown
        page.get_by_role("button", name="Generate").click()
    assert page.locator("#tokens .chip").count() == n + 1
    assert "gen" in query(page.url)
    with page.expect_navigation():  # the next page loaded, not the one still shown
        page.locator(".navigator nav[aria-label=Head] a", has_text="2").click()
    assert query(page.url)["head"] == ["2"] and query(page.url)["temperature"] == ["2"]
    page.locator("#text").fill("On the deserted planet they discovered a")
    with page.expect_navigation():  # the next page loaded, not the one still shown
        page.get_by_role("button", name="Run").click()
    assert page.locator("#tokens .chip").count() == 7
    assert "gen" not in query(page.url)  # new text: the generated tokens are gone
    assert query(page.url)["temperature"] == ["2"]
    page.context.close()


def test_narrow_screen_has_no_page_wide_scroll(server: str, browser: Any) -> None:
    for view in ("attention", "embedding", "mlp", "residual"):
        ctx = browser.new_context(viewport={"width": 360, "height": 800})
        page = ctx.new_page()
        page.goto(f"{server}/?text={TEXT}&view={view}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, view
        ctx.close()
