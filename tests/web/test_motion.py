"""The motion kit: frames shared out over MAX_FRAMES, a stylesheet rule for every frame, the player."""

from __future__ import annotations

import re

from app.paths import STATIC_DIR
from app.views.motion import MAX_FRAMES, frame_class, frame_of, player
from tests.web.conftest import parse

CSS = (STATIC_DIR / "motion.css").read_text(encoding="utf-8")


def test_short_figures_get_a_frame_per_part_and_long_ones_share_them_out() -> None:
    assert [frame_of(i, 5) for i in range(5)] == [0, 1, 2, 3, 4]
    assert [frame_of(i, 5, first=2) for i in range(5)] == [2, 3, 4, 5, 6]
    long = [frame_of(i, 256) for i in range(256)]
    assert long[0] == 0 and long[-1] == MAX_FRAMES - 1 and long == sorted(long)
    assert len(set(long)) == MAX_FRAMES  # every frame used, in order
    assert max(frame_of(i, 100, first=30) for i in range(100)) == MAX_FRAMES  # never past the last rule
    assert frame_class(3, 5, kind="grow") == "frame f3 grow"


def test_the_stylesheet_has_a_rule_for_every_frame_and_scrub_position() -> None:
    frames = {int(k) for k in re.findall(r"^\.f(\d+) \{ --f: \1; \}$", CSS, re.M)}
    scrub = {int(k) for k in re.findall(r'm-frame\[value="(\d+)"\]:checked\) \{ --k: \1; \}', CSS)}
    assert frames == scrub == set(range(MAX_FRAMES + 1))
    assert "@media (prefers-reduced-motion: reduce)" in CSS


def test_the_player_writes_pause_replay_and_one_radio_per_frame(app) -> None:  # type: ignore[no-untyped-def]
    env = app.state.templates
    html = env.from_string('{% from "motion.html" import player %}{{ player(p) }}').render(
        p=player("m-x", "q·kᵀ <row> by row", 4)
    )
    page = parse(html)
    assert page.one("input", **{"class": "m-pause", "type": "checkbox"})["id"] == "m-x-pause"
    assert page.one("input", **{"class": "m-replay", "type": "checkbox"})
    radios = page.all("input", type="radio", name="m-x-frame")
    assert [r["value"] for r in radios] == ["play", "0", "1", "2", "3"]
    assert "checked" in radios[0]
    assert "&lt;row&gt;" in html and "<row>" not in html  # the label is escaped
