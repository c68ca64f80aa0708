"""The guided tour in chromium: keyboard and buttons, with and without JavaScript, in both languages.

Screenshots of three steps per language go to /tmp/shots/tour_<lang>_<step>.png, to be looked at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlparse

import pytest

from tests.browser.conftest import open_page, shown_count

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
TEXT = "Data visualization empowers users to"
CHINESE = "人工智能正在改变世界"


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query, keep_blank_values=True).items()}


@pytest.mark.parametrize(
    ("lang", "steps"),
    [("en", [(2, TEXT), (11, TEXT), (17, TEXT)]), ("zh-CN", [(2, CHINESE), (11, TEXT), (17, TEXT)])],
)
def test_screenshots_of_three_steps(
    server: str, browser: Any, lang: str, steps: list[tuple[int, str]]
) -> None:
    SHOTS.mkdir(exist_ok=True)
    for number, text in steps:
        page, errors = open_page(browser, f"{server}/?text={quote_plus(text)}&tour={number}&lang={lang}")
        card = page.locator("#tour")
        assert card.get_attribute("data-step") == str(number)
        assert card.is_visible()
        assert page.evaluate("document.activeElement.getAttribute('rel')") == "next"  # Enter goes on
        page.screenshot(path=str(SHOTS / f"tour_{lang}_{number:02d}.png"))
        assert errors == []
        page.context.close()


FOCUS_ON_NEXT = "() => document.activeElement && document.activeElement.matches('#tour a[rel=next]')"


def test_next_and_previous_with_htmx_and_the_keyboard(server: str, browser: Any) -> None:
    page, errors = open_page(browser, f"{server}/?text={quote_plus(TEXT)}&tour=10")
    page.wait_for_function(FOCUS_ON_NEXT)  # the Next button gets the focus (autofocus) ...
    page.keyboard.press("Enter")  # ... so Enter goes on
    page.wait_for_selector('#tour[data-step="11"]')
    page.wait_for_function("() => location.search.includes('tour=11')")
    assert query_of(page.url)["step"] == "probs"
    assert page.locator("#panel rect.tour-mark").count() == 1
    top = page.evaluate("document.getElementById('tour').getBoundingClientRect().top")
    assert -2 <= top < 200  # the card was brought into view
    page.locator("#tour a[rel=prev]").click()
    page.wait_for_selector('#tour[data-step="10"]')
    assert query_of(page.url)["step"] == "masked"
    page.get_by_role("link", name="End the tour").click()
    page.wait_for_function("() => !document.getElementById('tour')")
    assert "tour" not in query_of(page.url)
    assert errors == []
    page.context.close()


def test_the_tour_works_without_javascript(server: str, browser: Any) -> None:
    page, _ = open_page(
        browser, f"{server}/?text={quote_plus(TEXT)}&tour=16&lang=zh-CN", java_script_enabled=False
    )
    with page.expect_navigation():  # the next page loaded, not the one still shown
        page.locator("#tour a[rel=next]").click()
    assert page.locator("#tour").get_attribute("data-step") == "17"
    assert page.locator("#tour a[rel=next]").inner_text().startswith("下一步")
    page.wait_for_function(FOCUS_ON_NEXT)
    with page.expect_navigation():  # the next page loaded, not the one still shown
        page.keyboard.press("Enter")  # the focus is on Next
    assert page.locator("#tour").get_attribute("data-step") == "18"
    assert query_of(page.url)["top_k"] == "5"  # the top-k step sets k
    assert shown_count(page, "#output td.p .at.cut") == 5
    page.context.close()
