"""The lecture hall in chromium: the projector view's type is big enough for the back row, its controls sit on
one line with nothing cut off, its previous/next buttons answer to access keys, and a link that names a panel
opens with that panel's figure on the screen."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, quote_plus, urlparse

import httpx
import pytest

from app.main import CSP

pytestmark = pytest.mark.browser

TEXT = quote_plus("Data visualization empowers users to see patterns")  # 8 tokens
NAMED = f"/?text={TEXT}&view=attention&layer=2&head=2&step=probs"  # the tiny model's last block
# Every text the reader sees in the first screen: its size in pixels (font size times the SVG's scale for
# SVG text), its box, and its words. Hidden text (display, visibility, opacity, clipped to nothing) is not
# seen, so it does not count.
TEXTS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode, el = t.parentElement;
    if (!t.data.trim() || !el || el.closest('noscript, title, script, style, datalist')) continue;
    if (!el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    const range = document.createRange();
    range.selectNodeContents(t);
    const rects = [...range.getClientRects()].filter(r => r.width > 1 && r.height > 1);
    if (!rects.length) continue;
    const left = Math.min(...rects.map(r => r.left)), right = Math.max(...rects.map(r => r.right));
    const top = Math.min(...rects.map(r => r.top)), bottom = Math.max(...rects.map(r => r.bottom));
    if (bottom <= 0 || top >= innerHeight || right <= 0 || left >= innerWidth) continue;
    let size = parseFloat(getComputedStyle(el).fontSize);
    if (el instanceof SVGElement) { const m = el.getScreenCTM(); size *= Math.hypot(m.a, m.b); }
    out.push({size, text: t.data.trim().slice(0, 40), left, right, top, bottom});
  }
  return out;
}"""
FLOORS = [((1920, 1080), 28.0), ((1280, 720), 20.0)]


def first_screen(browser: Any, url: str, width: int, height: int) -> tuple[Any, list[dict[str, Any]]]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, reduced_motion="reduce")
    page = ctx.new_page()
    page.goto(url)
    return page, page.evaluate(TEXTS)


# the front page, and a link to each panel (the attention map by its step, the others by view and block)
LINKS = {
    "overview": "/?text={t}&present=1",
    "attention": NAMED + "&present=1",
    **{v: f"/?text={{t}}&view={v}&layer=2&present=1" for v in ("embedding", "mlp", "residual", "kv")},
    "heads": "/?text={t}&view=heads&ablate=1.2&present=1",  # a head switched off: the strip and its "off"
    "attention, heads off": NAMED + "&ablate=1.2&present=1",  # the strip above takes the map's room
    "attention, its head off": NAMED + "&ablate=2.2&present=1",
}


@pytest.mark.parametrize(("screen", "floor"), FLOORS, ids=["1920x1080", "1280x720"])
@pytest.mark.parametrize("link", LINKS.values(), ids=LINKS.keys())
def test_every_text_of_the_projectors_first_screen_is_big_enough(
    server: str, browser: Any, screen: tuple[int, int], floor: float, link: str
) -> None:
    page, texts = first_screen(browser, server + link.format(t=TEXT), *screen)
    assert len(texts) > 40  # the header, the controls, the buttons and the figure's labels
    small = [(round(t["size"], 1), t["text"]) for t in texts if t["size"] < floor - 0.05]
    assert small == [], f"{len(small)} texts below {floor}px"
    cut = [t["text"] for t in texts if t["left"] < 0 or t["right"] > screen[0]]
    assert cut == []  # nothing runs off the screen sideways
    page.context.close()


@pytest.mark.parametrize("screen", [(1920, 1080), (1280, 720)], ids=["1920x1080", "1280x720"])
@pytest.mark.parametrize("ablate", ["", "1.2", "2.2"], ids=["all heads on", "heads off", "its head off"])
@pytest.mark.parametrize("step", ["scores", "probs", "out"])
def test_the_named_map_is_whole_on_the_projectors_screen(
    server: str, browser: Any, screen: tuple[int, int], ablate: str, step: str
) -> None:
    link = f"/?text={TEXT}&view=attention&layer=2&head=2&step={step}&ablate={ablate}&present=1"
    page, _ = first_screen(browser, server + link, *screen)
    box = page.locator("#panel svg.main-map").bounding_box()
    title = page.locator("#panel .step-body > h3").bounding_box()
    player = page.locator("#panel .stage-fig > .player").bounding_box()
    assert box["y"] > 0 and box["y"] + box["height"] <= screen[1]  # the map, its legend too, on the screen
    assert box["height"] > 0.4 * screen[1]  # and as large as the screen allows
    assert title["x"] + title["width"] <= player["x"]  # the player beside the step's title, clear of it
    page.context.close()


def test_the_overview_fills_the_projectors_screen(server: str, browser: Any) -> None:
    page, _ = first_screen(browser, f"{server}/?text={TEXT}&present=1", 1920, 1080)
    box = page.locator("#overview svg.sankey").bounding_box()
    assert box["width"] >= 0.85 * 1920 and box["y"] + box["height"] <= 1080  # wide, and whole on the screen
    page.context.close()


@pytest.mark.parametrize("screen", [(1920, 1080), (1280, 720)], ids=["1920x1080", "1280x720"])
def test_the_projectors_controls_sit_on_one_line(server: str, browser: Any, screen: tuple[int, int]) -> None:
    page, _ = first_screen(browser, f"{server}/?text={TEXT}&present=1", *screen)
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#controls :is(input, button, label, .now)')]
            .filter(e => e.checkVisibility() && e.getBoundingClientRect().width > 2)
            .map(e => { const r = e.getBoundingClientRect(); return [r.top, r.bottom, r.left, r.right]; })"""
    )
    assert len(boxes) >= 8
    assert max(b[0] for b in boxes) < min(b[1] for b in boxes)  # every control crosses one horizontal line
    assert min(b[2] for b in boxes) >= 0 and max(b[3] for b in boxes) <= screen[0]
    page.context.close()


def access_key(page: Any, key: str) -> None:
    """Alt+key as a keyboard sends it. Chromium matches access keys on the key's unmodified text, which
    Playwright's keyboard.press leaves out, so the key events go through the DevTools protocol."""
    cdp = page.context.new_cdp_session(page)
    code = ord(key.upper())
    for kind in ("rawKeyDown", "char", "keyUp"):
        event = {"type": kind, "modifiers": 1, "key": key, "code": f"Key{key.upper()}", "unmodifiedText": key}
        cdp.send(
            "Input.dispatchKeyEvent",
            {**event, "windowsVirtualKeyCode": code, "text": key if kind == "char" else ""},
        )


def test_previous_and_next_are_big_targets_with_access_keys(server: str, browser: Any) -> None:
    page, _ = first_screen(browser, server + NAMED + "&present=1", 1280, 720)
    turns = page.locator("nav.turns a[accesskey]")
    assert (
        turns.count() == 5
        and " ".join(page.locator("nav.turns .turn.off").inner_text().split()) == "next block \u203a"
    )
    for k in range(5):
        box = turns.nth(k).bounding_box()
        assert box["height"] >= 32 and box["width"] >= 120  # big enough to hit from a lectern
    assert sorted(turns.evaluate_all("as => as.map(a => a.accessKey)")) == ["h", "j", "k", "l", "u"]
    access_key(page, "k")  # next step: its access key, as a presenter presses it
    page.wait_for_function("() => location.search.includes('step=heads')")
    page.get_by_role("link", name="next head").click()
    page.wait_for_function("() => location.search.includes('head=3')")
    query = parse_qs(urlparse(page.url).query)
    assert query["present"] == ["1"] and query["layer"] == ["2"]
    page.context.close()


LINKS = {
    "attention step": (NAMED, "#panel svg.main-map"),
    "embedding": (f"/?text={TEXT}&view=embedding", "#panel svg"),
    "mlp of a token": (f"/?text={TEXT}&view=mlp&token=3", "#panel svg"),
    "residual": (f"/?text={TEXT}&view=residual&layer=5", "#panel svg"),
}


@pytest.mark.parametrize("screen", [(1440, 900), (1920, 1080)], ids=["1440x900", "1920x1080"])
@pytest.mark.parametrize("name", LINKS)
def test_a_link_opens_on_the_panel_it_names(
    server: str, browser: Any, screen: tuple[int, int], name: str
) -> None:
    url, figure = LINKS[name]
    page, _ = first_screen(browser, server + url, *screen)
    page.wait_for_function("() => document.activeElement?.id === 'opened'")  # autofocus brought it up
    top = page.locator("#panel").bounding_box()["y"]
    box = page.locator(figure).first.bounding_box()
    assert 0 <= top < screen[1] and 0 <= box["y"] < screen[1] - 100  # the figure starts on the first screen
    page.context.close()


def test_a_bare_link_opens_on_the_overview(server: str, browser: Any) -> None:
    page, _ = first_screen(browser, f"{server}/?text={TEXT}", 1440, 900)
    assert page.evaluate("scrollY") == 0
    assert page.locator("#overview").bounding_box()["y"] < page.locator("#panel").bounding_box()["y"]
    page.context.close()


def test_the_projector_view_keeps_the_content_security_policy(server: str) -> None:
    r = httpx.get(f"{server}/?text={TEXT}&present=1&view=mlp")
    assert r.headers["content-security-policy"] == CSP
    assert "<style" not in r.text and " style=" not in r.text and "<script>" not in r.text


def test_a_generated_token_slides_into_the_text(server: str, browser: Any) -> None:
    """After Generate the drawn token's chip and its step in the timeline play in from the right (the motion
    kit's "enter"); with reduced motion they stand still, shown."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    page = ctx.new_page()
    page.goto(f"{server}/?text={TEXT}&action=generate")
    names = page.evaluate(
        """() => document.getAnimations().filter(a => a.effect.target.closest('#tokens'))
            .map(a => a.animationName)"""
    )
    assert sorted(names) == ["gb-enter", "gb-enter"]
    ctx.close()
    page, _ = first_screen(browser, f"{server}/?text={TEXT}&action=generate", 1440, 900)
    assert page.evaluate("() => document.getAnimations().length") == 0
    chip = page.locator("#tokens li.enter a.chip")
    assert (
        chip.is_visible()
        and page.evaluate("() => getComputedStyle(document.querySelector('li.enter')).opacity") == "1"
    )
    page.context.close()
