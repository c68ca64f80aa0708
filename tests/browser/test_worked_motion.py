"""The panels' worked steps play in chromium: the embedding sum, the MLP's expand, GELU and project, and
LayerNorm's centre and scale. Pause stops them; under reduced motion nothing moves and every number shows."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pytest

from tests.browser.conftest import open_page

pytestmark = pytest.mark.browser

TEXT = quote_plus("Data visualization empowers users to")
PLAYERS = {  # the panel's URL, and its player's id
    "embedding": (f"/?text={TEXT}&view=embedding", "emb-sum"),
    "mlp": (f"/?text={TEXT}&view=mlp&token=3", "mlp-steps"),
    "residual": (f"/?text={TEXT}&view=residual&layer=2", "ln-steps"),
}
# the animations inside one player's figure, by their state
STATES = """id => document.getAnimations()
    .filter(a => a.effect.target.closest('.motion')?.querySelector('.m-pause')?.id === id + '-pause')
    .map(a => a.playState)"""
SHOWN = """id => [...document.getElementById(id + '-pause').closest('.motion')
    .querySelectorAll('rect[data-value]')].map(r => getComputedStyle(r.closest('.frame') || r).opacity)"""


@pytest.mark.parametrize("panel", PLAYERS)
def test_the_worked_step_plays_and_pause_stops_it(server: str, browser: Any, panel: str) -> None:
    url, player = PLAYERS[panel]
    page, errors = open_page(browser, server + url, slow=True)  # slowed: still playing when read
    states = page.evaluate(STATES, player)
    # playing: parts still to come run (on a busy machine the first ones may already have ended)
    assert len(states) >= 4 and states.count("running") >= 2, states
    assert set(states) <= {"running", "finished"}, states
    page.locator(f"label[for='{player}-pause']").click()
    assert set(page.evaluate(STATES, player)) <= {"paused", "finished"}
    assert "paused" in page.evaluate(STATES, player)
    assert errors == []
    page.context.close()


@pytest.mark.parametrize("panel", PLAYERS)
def test_nothing_moves_under_reduced_motion(server: str, browser: Any, panel: str) -> None:
    url, player = PLAYERS[panel]
    page, _ = open_page(browser, server + url, reduced_motion="reduce")
    assert page.evaluate("() => document.getAnimations().length") == 0
    shown = page.evaluate(SHOWN, player)
    assert shown and set(shown) == {"1"}  # every number of the figure, from the start
    page.context.close()


def test_a_chosen_frame_shows_the_sum_up_to_that_number(server: str, browser: Any) -> None:
    url, player = PLAYERS["embedding"]
    page, _ = open_page(browser, server + url)
    page.locator(f"label[for='{player}-f4']").click()  # frames 0, 1: the two rows; 2..: the sum's numbers
    shown = page.evaluate(SHOWN, player)
    assert shown == ["1"] * 16 + ["1"] * 16 + ["1"] * 3 + ["0"] * 13
    page.context.close()
