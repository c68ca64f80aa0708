"""Each fast writer of app/views/markup.py writes the same bytes as its template twin (tests/web/twins.html),
on texts made to test the escaping: markup, quotes, ampersands, right-to-left marks, Chinese."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pytest
from markupsafe import Markup

from app import i18n
from app.main import make_templates
from app.state import State
from app.views import markup
from app.views.format import table
from app.views.heatmap import Axes, Look, Motion, heatmap
from app.views.output import draw_stops, output_stages
from app.views.overview import fan_stages, fan_view, layout, overview_view
from model import GPT2

NASTY = ["<script>alert(1)</script>", "say \"hi\" & 'bye'", "a\u202eb", "汉字 &amp; <b>", "x"]


@pytest.fixture(scope="module")
def twins() -> Any:
    env = make_templates()
    env.loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(Path(__file__).parent)), env.loader])
    env.filters["hescape"] = lambda s: Markup(escape(str(s)))
    env.filters["zip"] = lambda first, *rest: list(zip(first, *rest, strict=True))
    return env.get_template("twins.html").module


def matrix(rows: int, cols: int, masked: bool) -> np.ndarray:
    m = np.random.default_rng(3).normal(size=(rows, cols)) * 3
    if masked:
        m[np.triu_indices(rows, 1, cols)] = -np.inf
    return m


@pytest.mark.parametrize("numbers", [False, True])
@pytest.mark.parametrize("titles", [False, True])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("motion", [None, Motion("row", "hide")])
def test_heatmap_squares_and_pins_equal_their_twins(
    twins: Any, numbers: bool, titles: bool, signed: bool, motion: Motion | None
) -> None:
    m = matrix(5, 5, masked=not signed)
    values = m if signed else np.abs(m)
    axes = Axes(NASTY, NASTY, left=30, top=30, describe="{row} → {col}: ")
    look = Look(signed=signed, numbers=numbers, titles=titles, index=(2,), motion=motion)
    h = heatmap("block0.attn.probs", values, axes, look)
    assert h.markup and str(twins.squares(h.squares, titles, numbers)) == h.markup
    assert str(twins.heatmap_cells(h.markup, None)) == str(h.svg_cells)
    assert (len(h.pins) == len(h.squares.values)) == titles  # a square pins a card when it has a title
    if h.pins:
        assert str(twins.pin_cards(h.pins)) == str(h.pin_cards)


def test_compact_heatmap_paths_equal_their_twin(twins: Any) -> None:
    h = heatmap("block0.mlp.act", matrix(60, 60, masked=True), Axes([""] * 60, [""] * 60))
    assert h.paths and str(twins.heatmap_cells("", h.paths)) == str(h.svg_cells)


def test_table_body_equals_its_twin(twins: Any) -> None:
    t = table("caption", matrix(5, 5, masked=True), NASTY, NASTY, selected_row=2)
    assert str(twins.table_body(t)) == str(t.body) == str(markup.table_body(t))


@pytest.mark.parametrize("text", ["<b>\"bold\"</b> & 'quotes'", "你好世界 and more"])
@pytest.mark.parametrize("lang", ["en", "zh-CN"])
@pytest.mark.parametrize(("top_k", "top_p"), [(None, None), (3, None), (None, 0.0003)])
def test_fan_and_output_rows_equal_their_twins(
    twins: Any, gpt2: GPT2, text: str, lang: str, top_k: int | None, top_p: float | None
) -> None:
    tokens = gpt2.tokenize(text)
    trace = gpt2.trace([t.id for t in tokens])
    state = State(text=text, model=gpt2.name, top_k=top_k, top_p=top_p, temperature=2.0, seed=5)
    tok = gpt2.tokenizer.token
    with i18n.use(lang):
        drawn = draw_stops(trace, state)
        lay = layout(trace.n_tokens)
        for fan in (fan_stages(drawn.stops, drawn.samplings, tok, lay), fan_view(state, drawn.ref, tok, lay)):
            for base, oob in (("", False), ("http://x.example", True)):
                assert str(twins.fan(fan, base, oob)) == str(fan.svg(base, oob))
        stages = output_stages(trace, state, tok, drawn)
        assert str(twins.stacked_rows(stages.stops, stages.outputs)) == str(stages.rows)
    # a drawn token outside the top rows comes after a gap row, shown at its stop only
    for seed in range(40):
        rare = State(text=text, model=gpt2.name, temperature=5.0, seed=seed)
        stages = output_stages(trace, rare, tok, draw_stops(trace, rare))
        if any(o.extra is not None for o in stages.outputs):
            assert str(twins.stacked_rows(stages.stops, stages.outputs)) == str(stages.rows)
            assert '<tr class="gap at s' in str(stages.rows)
            break
    else:
        pytest.fail("no seed drew a token outside the top rows")


@pytest.mark.parametrize("layer", [1, 2])
def test_overview_strips_equal_their_twin(twins: Any, gpt2: GPT2, layer: int) -> None:
    trace = gpt2.trace([t.id for t in gpt2.tokenize("<b>\"bold\"</b> & 'quotes' 你好")])
    state = State(text="x", layer=layer, head=2)
    o = overview_view(trace, state, Markup(""), gpt2.tokenizer.token)
    assert len(o.strips) > trace.n_tokens  # every token's vectors, and each block's attention row
    for s in o.strips:
        assert str(twins.strip_squares(s)) == str(s.svg_squares) and s.svg_squares.count("<rect") == len(
            s.squares
        )
