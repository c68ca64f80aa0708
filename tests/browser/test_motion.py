"""The motion kit in chromium: parts play, pause, replay and scrub, with no script; nothing moves when the
reader asks for reduced motion. A bare figure is loaded with the served stylesheet."""

from __future__ import annotations

from typing import Any

import pytest

from app.views.motion import frame_class, player
from tests.browser.conftest import open_page

pytestmark = pytest.mark.browser

PARTS = 6


def figure(server: str, browser: Any, **context: Any) -> Any:
    """A page holding one playing figure of PARTS parts, styled by /static/motion.css."""
    page, _ = open_page(browser, f"{server}/api", **context)
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader("templates"), autoescape=True, extensions=["jinja2.ext.i18n"]
    )
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    controls = env.from_string('{% from "motion.html" import player %}{{ player(p) }}').render(
        p=player("m-t", "test", PARTS)
    )
    parts = "".join(f'<p class="{frame_class(i, PARTS)}" id="part{i}">part {i}</p>' for i in range(PARTS))
    page.set_content(
        f'<html><head><link rel="stylesheet" href="{server}/static/motion.css"></head><body>'
        f'<div class="motion">{controls}<div class="stage">{parts}</div></div></body></html>'
    )
    page.wait_for_function(
        "() => document.styleSheets.length === 1 && document.styleSheets[0].cssRules.length"
    )
    return page


def running(page: Any) -> list[str]:
    return page.evaluate(
        "() => document.getAnimations().filter(a => a.playState === 'running').map(a => a.animationName)"
    )


def opacity(page: Any, i: int) -> float:
    return float(page.evaluate(f"() => getComputedStyle(document.getElementById('part{i}')).opacity"))


def test_parts_play_and_the_pause_stops_them(server: str, browser: Any) -> None:
    page = figure(server, browser)
    assert sorted(running(page)) == ["gb-reveal"] * PARTS
    page.get_by_text("Pause").click()
    states = page.evaluate("() => document.getAnimations().map(a => a.playState)")
    assert states == ["paused"] * PARTS
    page.get_by_text("Play", exact=True).click()
    # they go on from where they stopped (on a busy machine the first part may already have ended)
    resumed = page.evaluate("() => document.getAnimations().map(a => a.playState)")
    assert len(resumed) == PARTS and "running" in resumed and set(resumed) <= {"running", "finished"}
    page.context.close()


def test_replay_starts_the_parts_again(server: str, browser: Any) -> None:
    page = figure(server, browser)
    page.evaluate("() => document.getAnimations().forEach(a => a.finish())")
    assert running(page) == []
    page.get_by_text("Replay").click()
    assert sorted(running(page)) == ["gb-reveal-again"] * PARTS
    page.context.close()


def test_a_chosen_frame_shows_the_parts_up_to_it_still(server: str, browser: Any) -> None:
    page = figure(server, browser)
    page.locator("label[for='m-t-f2']").click()
    assert page.evaluate("() => document.getAnimations().length") == 0
    assert [opacity(page, i) for i in range(PARTS)] == [1, 1, 1, 0, 0, 0]
    page.keyboard.press("ArrowRight")  # a radio group: the arrow keys move along the frames
    assert [opacity(page, i) for i in range(PARTS)] == [1, 1, 1, 1, 0, 0]
    page.context.close()


def test_nothing_moves_under_reduced_motion_and_every_part_shows(server: str, browser: Any) -> None:
    page = figure(server, browser, reduced_motion="reduce")
    assert page.evaluate("() => document.getAnimations().length") == 0
    assert [opacity(page, i) for i in range(PARTS)] == [1] * PARTS
    assert not page.get_by_text("Pause").is_visible()
    page.context.close()
