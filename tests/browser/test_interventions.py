"""Heads switched off and two prompts compared, in chromium: clicks keep the state in the address bar (with
htmx and without JavaScript), the numbers on the page are /api/predict's, the compare view stacks on a phone.

Screenshots go to /tmp/shots/interventions_*.png, to be looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest

from tests.browser.conftest import open_page

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
TEXT = "The doctor said that he"
TEXT2 = "The doctor said that she"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def probabilities(page: Any, selector: str, *attributes: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(
        selector,
        "(rows, names) => rows.map(r => Object.fromEntries(names.map(n => [n, r.getAttribute(n)])))",
        list(attributes),
    )


@pytest.mark.parametrize("script", [True, False], ids=["htmx", "no-js"])
def test_switching_heads_off_and_on_round_trips_through_the_address_bar(
    server: str, browser: Any, script: bool
) -> None:
    page, errors = open_page(
        browser, f"{server}/?text={quote_plus(TEXT)}&view=heads", java_script_enabled=script
    )
    page.locator('a.head-square[data-block="2"][data-head="3"]').click()
    page.wait_for_function("() => location.search.includes('ablate=2.3')")
    page.wait_for_selector("#ablation")
    assert query(page.url)["ablate"] == ["2.3"] and query(page.url)["view"] == ["heads"]
    page.locator('a.head-square[data-block="1"][data-head="1"]').click()
    page.wait_for_function(
        "() => location.search.includes('ablate=1.1%2C2.3') || location.search.includes('ablate=1.1,2.3')"
    )
    assert query(page.url)["ablate"] == ["1.1,2.3"]
    assert page.locator("a.head-square.off").count() == 2
    # the permalink box holds the same state, and a block link keeps it
    assert query(page.locator("#permalink").input_value())["ablate"] == ["1.1,2.3"]
    page.locator("#panel nav.tabs a", has_text="Attention").click()
    page.wait_for_function("() => location.search.includes('view=attention')")
    assert query(page.url)["ablate"] == ["1.1,2.3"]
    if script:  # the temperature slider rests on 1.2: the heads stay off, before/after is redrawn there
        page.locator("input[name=temperature]:checked").focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => location.search.includes('temperature=1.2')")
        assert query(page.url)["ablate"] == ["1.1,2.3"]
        page.wait_for_function("() => document.querySelector('#before-after').dataset.temperature === '1.2'")
        rows = probabilities(page, ".before-after tr[data-id]", "data-id", "data-after")
        api = f"{server}/api/predict?text={quote_plus(TEXT)}&temperature=1.2&n=50&ablate=1.1,2.3"
        after = {c["id"]: c["prob"] for c in page.request.get(api).json()["top"]}
        assert len(rows) >= 8
        for row in rows:
            assert float(row["data-after"]) == pytest.approx(after[int(row["data-id"])], abs=1e-12)
    page.locator("#ablation a", has_text="block 2 head 3").click()
    page.wait_for_function("() => !location.search.includes('2.3')")
    assert query(page.url)["ablate"] == ["1.1"]
    page.get_by_role("link", name="Switch them all back on").click()
    page.wait_for_function("() => !location.search.includes('ablate')")
    assert page.locator("#ablation").count() == 0
    assert errors == []
    page.context.close()


def test_before_and_after_on_the_page_equal_the_api(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={quote_plus(TEXT)}&ablate=1.2,2.4&top_k=6")
    rows = probabilities(page, ".before-after tr[data-id]", "data-id", "data-before", "data-after")
    assert len(rows) >= 8
    api = f"{server}/api/predict?text={quote_plus(TEXT)}&top_k=6&n=50"
    before = {c["id"]: c["prob"] for c in page.request.get(api).json()["top"]}
    after = {c["id"]: c["prob"] for c in page.request.get(api + "&ablate=1.2,2.4").json()["top"]}
    for row in rows:
        token = int(row["data-id"])
        assert float(row["data-before"]) == pytest.approx(before[token], abs=1e-12)
        assert float(row["data-after"]) == pytest.approx(after[token], abs=1e-12)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "interventions_ablated.png"), full_page=True)
    assert errors == []
    page.context.close()


def test_the_compare_view_patches_from_the_grid_and_the_form(server: str, browser: Any) -> None:
    url = f"{server}/?text={quote_plus(TEXT)}&text2={quote_plus(TEXT2)}&view=compare&layer=2&head=3"
    page, errors = open_page(browser, url)
    assert page.locator(".pair-section .side").count() == 6  # tokens, predictions, attention: A and B each
    page.locator('a.patch-square[data-site="1"][data-token="5"]').click()
    page.wait_for_selector(".patch-result")
    q = query(page.url)
    assert q["patch"] == ["1.5"] and q["text2"] == [TEXT2] and q["layer"] == ["2"] and q["head"] == ["3"]
    result = page.locator(".patch-result")
    api = f"{server}/api/predict?text={quote_plus(TEXT2)}&patch_from={quote_plus(TEXT)}&patch=1.5&n=50"
    patched = {c["id"]: c["prob_all"] for c in page.request.get(api).json()["top"]}
    for row in probabilities(page, ".patch-result tr[data-patched]", "data-id", "data-patched"):
        if int(row["data-id"]) in patched:
            assert float(row["data-patched"]) == pytest.approx(patched[int(row["data-id"])], abs=1e-12)
    assert result.get_attribute("data-p-patched")
    # the form: another block and token, sent as a permalink
    page.select_option("#patch_block", "0")
    page.select_option("#patch_token", "2")
    page.get_by_role("button", name="Patch").click()
    page.wait_for_function("() => location.search.includes('patch=0.2')")
    assert query(page.url)["text2"] == [TEXT2] and "patch_block" not in query(page.url)
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / "interventions_compare.png"), full_page=True)
    assert errors == []
    page.context.close()


def test_on_a_phone_the_two_prompts_stack(server: str, browser: Any) -> None:
    url = f"{server}/?text={quote_plus(TEXT)}&text2={quote_plus(TEXT2)}&view=compare"
    for width, stacked in ((1280, False), (390, True)):
        ctx = browser.new_context(viewport={"width": width, "height": 844})
        page = ctx.new_page()
        page.goto(url)
        a = page.locator('#tokens .side[data-side="A"]').bounding_box()
        b = page.locator('#tokens .side[data-side="B"]').bounding_box()
        assert a and b
        assert (b["y"] >= a["y"] + a["height"] - 1) is stacked  # B below A
        assert (abs(a["y"] - b["y"]) < 1) is not stacked  # side by side
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1  # nothing wider than the screen: wide figures scroll inside their box
        if stacked:
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "interventions_compare_phone.png"), full_page=True)
        ctx.close()


@pytest.mark.parametrize("script", [True, False], ids=["htmx", "no-js"])
def test_the_attention_panel_switches_its_head_and_the_overview_shows_both_runs(
    server: str, browser: Any, script: bool
) -> None:
    url = f"{server}/?text={quote_plus(TEXT)}&view=attention&layer=2&head=3&step=probs"
    page, errors = open_page(browser, url, java_script_enabled=script)
    assert page.locator(".overview-change").count() == 0  # every head on: one run
    page.get_by_role("link", name="Switch this head off").click()
    page.wait_for_function("() => location.search.includes('ablate=2.3')")
    page.wait_for_selector(".head-switch.off")
    q = query(page.url)
    assert (
        q["ablate"] == ["2.3"] and q["view"] == ["attention"] and q["layer"] == ["2"] and q["head"] == ["3"]
    )
    # the overview: the likeliest next tokens with the head off, beside their probability with it on
    api = f"{server}/api/predict?text={quote_plus(TEXT)}&n=50"
    before = {c["id"]: c["prob"] for c in page.request.get(api).json()["top"]}
    after = page.request.get(api + "&ablate=2.3").json()["top"]
    rows = probabilities(page, ".overview-change li", "data-id", "data-before", "data-after")
    assert [int(r["data-id"]) for r in rows] == [c["id"] for c in after[:3]]
    for row, want in zip(rows, after, strict=False):
        assert float(row["data-after"]) == pytest.approx(want["prob"], abs=1e-12)
        assert float(row["data-before"]) == pytest.approx(before[want["id"]], abs=1e-12)
    # the all-heads grid: head 1 off too, then head 3 back on from the grid
    page.locator('.heads a.head-toggle[data-toggle="2.1"]').click()
    page.wait_for_function(
        "() => location.search.includes('ablate=2.1%2C2.3') || location.search.includes('ablate=2.1,2.3')"
    )
    page.locator('.heads a.head-toggle[data-toggle="2.3"]').click()
    page.wait_for_function("() => /ablate=2\\.1(&|$)/.test(location.search)")
    assert query(page.url)["ablate"] == ["2.1"]
    assert page.locator(".head-switch.off").count() == 0  # head 3 (the open one) is on again
    assert errors == []
    page.context.close()
