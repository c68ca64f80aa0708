"""The picture in chromium, on GPT-2-small's shapes (random-gpt2: 12 blocks, 12 heads): the overview names
every tensor it draws, its text stays readable, the tour's card stays beside what it describes, attention
steps play (and hold still for reduced motion), and a clicked square pins its value without scrolling.

Screenshots go to /tmp/shots/picture_*.png, to be looked at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import uvicorn

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from app.views.tour import TOUR_STEPS
from model import GPT2, load_model
from tests.browser.conftest import free_port, slow_motion

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots")
EIGHT = "Data visualization empowers users to see patterns"  # 8 tokens
FORTY = " ".join([EIGHT] * 5)  # 40 tokens


@pytest.fixture(scope="module")
def gpt2_small() -> GPT2:
    return GPT2(load_model("random-gpt2"))


@pytest.fixture(scope="module")
def big(gpt2_small: GPT2) -> Iterator[str]:
    """The app serving random-gpt2 on a loopback port; yields its base URL."""
    app = create_app(Settings(max_tokens=64), Serving(gpt2=gpt2_small, source="random-gpt2"))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=10)


def visit(
    browser: Any, url: str, width: int = 1440, height: int = 900, slow: bool = False, **context: Any
) -> Any:
    page = browser.new_context(viewport={"width": width, "height": height}, **context).new_page()
    if slow:
        slow_motion(page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.errors = errors
    return page


def shot(page: Any, name: str, selector: str | None = None, full: bool = False) -> None:
    SHOTS.mkdir(exist_ok=True)
    target = page.locator(selector).first if selector else page
    target.screenshot(path=str(SHOTS / f"picture_{name}.png"), **({"full_page": True} if full else {}))


def test_the_prompts_have_8_and_40_tokens(gpt2_small: GPT2) -> None:
    assert (len(gpt2_small.tokenize(EIGHT)), len(gpt2_small.tokenize(FORTY))) == (8, 40)


TENSORS = "() => [...document.querySelectorAll('#overview [data-tensor]')].map(e => e.dataset.tensor)"


@pytest.mark.parametrize("expand", [False, True])
def test_the_overview_marks_every_blocks_tensors(big: str, browser: Any, expand: bool) -> None:
    page = visit(browser, f"{big}/?text={quote_plus(EIGHT)}{'&expand=1' if expand else ''}")
    names = page.evaluate(TENSORS)
    assert {"embed.sum", "final.ln"} <= set(names)
    for b in range(12):
        for part in ("attn.probs", "mlp.out", "resid.mid", "resid.out"):
            assert f"block{b}.{part}" in names, (b, part)
    # one strip per token in each of the Embedding and Unembed boxes, holding its first 16 numbers
    assert names.count("embed.sum") >= 8 and names.count("final.ln") == 8
    strip = page.locator('#overview g.strip[data-tensor="final.ln"]').first.locator("rect")
    assert strip.count() == 16
    assert page.locator('#output rect[data-tensor="sampling.probs"]').count() >= 10
    shot(page, "overview_expanded" if expand else "overview", "#overview")
    assert page.errors == []
    page.context.close()


SIZES = """() => {
  const out = [];
  for (const t of document.querySelectorAll('#overview svg text')) {
    if (!t.textContent.trim()) continue;
    out.push([parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a, t.textContent]);
  }
  const walk = document.createTreeWalker(document.getElementById('overview'), NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const el = walk.currentNode.parentElement;
    if (!walk.currentNode.textContent.trim() || el.closest('svg') || !el.getClientRects().length) continue;
    out.push([parseFloat(getComputedStyle(el).fontSize), walk.currentNode.textContent.trim()]);
  }
  return out;
}"""


@pytest.mark.parametrize("text", [EIGHT, FORTY], ids=["8 tokens", "40 tokens"])
def test_no_text_in_the_overview_is_below_12px(big: str, browser: Any, text: str) -> None:
    page = visit(browser, f"{big}/?text={quote_plus(text)}")
    sizes = page.evaluate(SIZES)
    assert len(sizes) > 40
    small = [(round(px, 1), words) for px, words in sizes if px < 12]
    assert small == []
    if text == FORTY:
        shot(page, "overview_40", "#overview")
    page.context.close()


def inside(box: dict[str, float], width: int, height: int) -> bool:
    """Within the window, to a pixel (a box scrolled to the top may start a fraction above it)."""
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    return x >= -1 and y >= -1 and x + w <= width + 1 and y + h <= height + 1


def apart(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]


def test_every_tour_step_shows_its_card_beside_what_it_describes(big: str, browser: Any) -> None:
    """At 1280x720, opened by a link (no script needed: CSS scrolls to the target) and by Next (htmx)."""
    page = visit(browser, f"{big}/?text={quote_plus(EIGHT)}&tour=1", 1280, 720)
    for number in range(1, TOUR_STEPS + 1):
        if number > 1 and number % 2:  # every other step through the Next button (htmx swaps the page)
            page.locator("#tour a[rel=next]").click()
        elif number > 1:
            page.goto(f"{big}/?text={quote_plus(EIGHT)}&tour={number}")
        page.wait_for_selector(f'#tour[data-step="{number}"]')
        page.wait_for_timeout(100)
        card = page.locator("[data-tour-card]").bounding_box()
        target = page.locator("[data-tour-target]")
        assert target.count() == 1
        box = target.bounding_box()
        assert inside(card, 1280, 720), number
        assert inside(box, 1280, 720), (number, target.get_attribute("data-tour-target"), box)
        assert apart(card, box), number  # the card never covers what it describes
        if number in (1, 8, 17):
            shot(page, f"tour_{number:02d}")
    assert page.errors == []
    page.context.close()


# the attention step's own animations (the output panel's chain plays beside it, with its own player)
RUNNING = """() => document.getAnimations()
    .filter(a => a.playState === 'running' && a.effect.target.closest('.stage-fig')).length"""


@pytest.mark.parametrize("step", ["scores", "scaled", "masked", "probs", "heads"])
def test_an_attention_step_plays_pauses_and_holds_still_for_reduced_motion(
    big: str, browser: Any, step: str
) -> None:
    url = f"{big}/?text={quote_plus(EIGHT)}&step={step}"
    page = visit(browser, url, slow=True)  # slowed: still playing when read
    # a part per row at least (the mask greys the 7 rows with later tokens), some still playing (on a busy
    # machine the first rows may already have ended)
    parts = page.evaluate(
        "() => document.getAnimations().filter(a => a.effect.target.closest('.stage-fig')).length"
    )
    assert parts >= 7 and page.evaluate(RUNNING) >= 1
    page.locator(".stage-fig .player label", has_text="Pause").click()
    states = page.evaluate(
        "() => [...new Set(document.getAnimations().filter(a => a.effect.target.closest('.stage-fig'))"
        ".map(a => a.playState))]"
    )
    assert "running" not in states
    page.context.close()
    still = visit(browser, url, reduced_motion="reduce")
    assert still.evaluate("() => document.getAnimations().length") == 0
    # the same content: every square of the step's result is there, and shows
    squares = still.locator(".stage-fig svg.main-map > rect[data-value], .stage-fig svg.main-map > a > rect")
    assert squares.count() > 0
    first = "document.querySelector('.stage-fig svg.main-map a, .stage-fig svg.main-map > rect')"
    assert still.evaluate(f"() => getComputedStyle({first}).opacity") == "1"
    still.context.close()


def test_scrubbing_stops_the_softmax_at_a_frame(big: str, browser: Any) -> None:
    """Start, middle and end of one animation, held by the frame radios; screenshots to look at."""
    page = visit(browser, f"{big}/?text={quote_plus(EIGHT)}&step=probs")
    shown = []
    for k in (0, 3, 7):
        page.locator(f"label[for='attention-play-f{k}']").click()
        assert page.evaluate(RUNNING) == 0
        # the previous step's numbers drawn over each row vanish once its frame has come
        over = page.locator(".stage-fig g.layer a, .stage-fig g.layer rect")
        hidden = over.evaluate_all("els => els.map(e => getComputedStyle(e).opacity)")
        shown.append(sum(1 for o in hidden if o == "1"))
        shot(page, f"softmax_frame_{k + 1}", ".stage-fig")
    assert shown[0] > shown[1] > shown[2] == 0
    page.context.close()


def test_a_clicked_square_pins_its_value_and_nothing_scrolls(big: str, browser: Any) -> None:
    page = visit(browser, f"{big}/?text={quote_plus(EIGHT)}&step=probs&layer=3&head=5")
    square = page.locator(".stage-fig svg.main-map a").nth(9)
    square.scroll_into_view_if_needed()
    before = page.evaluate("scrollY")
    value = square.locator("rect").get_attribute("data-value")
    square.click()
    card = page.locator(".pin:target")
    assert card.is_visible()
    assert page.evaluate("scrollY") == before
    assert card.locator("strong").inner_text() == value
    assert card.locator("code").inner_text() == "block2.attn.probs[4, 1, 1]"  # row 2, column 2 of head 5
    shot(page, "pinned")
    card.locator("a").click()
    assert page.locator(".pin:target").count() == 0
    page.context.close()


@pytest.mark.parametrize(
    ("name", "width", "height", "query"),
    [
        ("1440", 1440, 900, ""),
        ("1280", 1280, 720, ""),
        ("4k", 3840, 2160, ""),
        ("phone", 390, 844, "&step=probs"),
        ("zh", 1440, 900, "&lang=zh-CN&step=scaled"),
    ],
)
def test_screenshots(big: str, browser: Any, name: str, width: int, height: int, query: str) -> None:
    extra = {"device_scale_factor": 2, "is_mobile": True, "has_touch": True} if name == "phone" else {}
    page = visit(browser, f"{big}/?text={quote_plus(EIGHT)}{query}", width, height, **extra)
    page.evaluate("() => document.getAnimations().forEach(a => a.finish())")
    shot(page, name, full=name in ("phone", "zh"))
    assert page.errors == []
    page.context.close()
