"""The picture's numbers are the trace's: the overview's strips, lines and additions, the fan's start, the
attention row and what its frames show, the legends and the pinned cards."""

from __future__ import annotations

import re
from html import unescape

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.service.intervene import intervention_of
from app.state import State
from app.views.attention import attention_view
from app.views.attention_steps import CHAIN
from app.views.format import num
from app.views.output import draw
from app.views.overview import fan_view, layout, overview_view
from model import GPT2
from tests.web.conftest import parse

TEXT = "Data visualization empowers users to"


@pytest.fixture(scope="module")
def ids(gpt2: GPT2) -> list[int]:
    return [t.id for t in gpt2.tokenize(TEXT)]


def test_layout_grows_with_the_text_and_keeps_labels_readable() -> None:
    short, long = layout(6), layout(40)
    assert short.font >= 12 and long.font >= 12
    assert long.row >= 22 and long.area == pytest.approx(40 * long.row)
    assert long.bottom > short.bottom


@pytest.mark.parametrize("expand", [False, True])
def test_the_overview_draws_the_traces_numbers(gpt2: GPT2, ids: list[int], expand: bool) -> None:
    trace = gpt2.trace(ids)
    state = State(text=TEXT, layer=2, head=3, token=4, expand=expand)
    tok = gpt2.tokenizer.token
    o = overview_view(trace, state, "", tok)
    strips = {}
    for s in o.strips:
        strips.setdefault(s.tensor, []).append([float(v) for _x, _f, v in s.squares])
    for name in ("embed.sum", "final.ln"):
        np.testing.assert_allclose(strips[name], trace[name][:, :16], atol=1e-7)
    if not expand:  # the selected block's q, k, v of head 3: each token's first 8 numbers
        for part in ("q", "k", "v"):
            np.testing.assert_allclose(strips[f"block1.{part}"], trace[f"block1.{part}"][2][:, :8], atol=1e-7)
    lines = [c for c in o.curves if c.cls == "attn" and c.tensor == "block1.attn.probs"]
    probs = trace["block1.attn.probs"][2][3, :4]
    np.testing.assert_allclose([float(c.value) for c in lines], probs, atol=1e-7)
    named = {m.tensor for m in [*o.boxes, *o.curves, *o.adds, *o.strips] if m.tensor}
    named |= {g.tensor for s in o.streams for g in s.segments}
    for b in range(trace.config.n_layer):
        assert {f"block{b}.{x}" for x in ("attn.probs", "mlp.out", "resid.mid", "resid.out")} <= named
    # a token's stream is named by what flows in each stretch, left to right, and leaves as the last output
    stretches = [g.tensor for g in o.streams[0].segments]
    assert stretches[0] == "embed.sum" and stretches[-1] == f"block{trace.config.n_layer - 1}.resid.out"
    assert all(g.w > 0 for s in o.streams for g in s.segments)


def test_the_fan_leaves_the_last_tokens_band(gpt2: GPT2, ids: list[int]) -> None:
    trace = gpt2.trace(ids)
    state = State(text=TEXT, temperature=3.0)
    lay = layout(trace.n_tokens)
    fan = fan_view(state, draw(trace, state), gpt2.tokenizer.token, lay)
    top, band = lay.source
    assert top == pytest.approx(lay.ys[-1] - lay.band / 2) and band == lay.band
    starts = [[float(x) for x in re.match(r"M([\d.]+),([\d.]+)", r.d).groups()] for r in fan.stops[0].ribbons]  # type: ignore[union-attr]
    assert {x for x, _y in starts} == {round(lay.fan_x, 1)}
    ends = [float(re.search(r"([\d.]+) Z$", r.d).group(1)) for r in fan.stops[0].ribbons]  # type: ignore[union-attr]
    assert starts[0][1] == pytest.approx(top, abs=0.01)
    assert ends[-1] == pytest.approx(top + band, abs=0.02)  # the ribbons share the band by probability


@pytest.mark.parametrize("step", ["qkv", *CHAIN, "concat", "out"])
def test_the_attention_row_and_the_frames_show_real_numbers(gpt2: GPT2, ids: list[int], step: str) -> None:
    trace = gpt2.trace(ids)
    state = State(text=TEXT, layer=2, head=3, step=step)
    a = attention_view(trace, state, gpt2.tokenizer.token)
    assert [c.key for c in a.chain] == list(CHAIN)
    assert [c.key for c in a.chain if c.selected] == ([step] if step in CHAIN else [])
    assert a.in_chain == (step in CHAIN)
    for c in a.chain:  # small, labelled, with a legend
        assert c.map.paths is not None and c.map.labels and c.map.legend is not None
    for h in a.maps:  # large: squares of 20 units or more, labels on rows and columns, a legend
        assert h.cell >= 20 and h.left > 0 and h.legend is not None
        assert {lab.anchor for lab in h.labels} >= {"end"}
    assert a.player.frames == (trace.config.n_head if step == "concat" else trace.n_tokens)
    before = {"scaled": "scores", "probs": "masked"}.get(step)
    if before:  # the previous step's numbers, drawn over the new ones until each row's frame
        layer = a.maps[0].layers[0]
        assert f'data-tensor="block1.attn.{before}"' in layer
        values = [float(v) for v in re.findall(r'data-value="([^"]+)"', layer)]
        m = trace[f"block1.attn.{before}"][2]
        np.testing.assert_allclose(values, m[np.isfinite(m)], atol=1e-7)
        squares = re.findall(r'<rect class="frame f(\d+) hide"', layer)  # each hides at its row's frame
        assert len(squares) == len(values)
        rows = [i for i in range(m.shape[0]) for j in range(m.shape[1]) if np.isfinite(m[i, j])]
        assert [int(f) for f in squares] == rows


def test_legends_run_over_the_colour_scale(gpt2: GPT2, ids: list[int]) -> None:
    trace = gpt2.trace(ids)
    tok = gpt2.tokenizer.token
    scores = attention_view(trace, State(text=TEXT, step="scores"), tok).maps[0].legend
    probs = attention_view(trace, State(text=TEXT, step="probs"), tok).maps[0].legend
    top = float(np.abs(trace["block0.attn.scores"][0]).max())
    assert scores is not None and probs is not None
    assert (scores.low.text, scores.high.text) == (f"\N{MINUS SIGN}{top:.3g}", f"{top:.3g}")
    assert (probs.low.text, probs.high.text) == ("0", "1")
    assert scores.stops[0][1] != scores.stops[-1][1]


def test_a_switched_off_heads_zeros_read_0_without_a_sign(gpt2: GPT2, ids: list[int]) -> None:
    assert (num(-0.0), num(0.0), num(-0.001)) == ("0", "0", "\N{MINUS SIGN}0.001")
    state = State(text=TEXT, layer=2, head=3, step="heads", ablate=((2, 3),))  # its weighted values are all 0
    trace = gpt2.trace(ids, intervention_of(state))
    legend = attention_view(trace, state, gpt2.tokenizer.token).maps[0].legend
    assert legend is not None and "\N{MINUS SIGN}" not in legend.low.text + legend.high.text


def test_every_pinned_card_holds_its_tensor_entry(client: TestClient, gpt2: GPT2, ids: list[int]) -> None:
    html = client.get("/", params={"text": TEXT, "layer": "2", "head": "3", "step": "heads"}).text
    cards = re.findall(r'<p class="pin" id="([^"]+)"><code>([^<]+)</code> = <strong>([^<]+)</strong>', html)
    trace = gpt2.trace(ids)
    assert len(cards) == trace.n_tokens * 16  # block1.attn.heads, head 3: 16 numbers per token
    assert len({card_id for card_id, _e, _v in cards}) == len(cards)
    links = {a["href"] for a in parse(html).all("a", tabindex="-1")}
    for card_id, entry, value in cards:
        assert f"#{card_id}" in links  # its square links to it
        name, index = re.match(r"(.+)\[(.+)\]", unescape(entry)).groups()  # type: ignore[union-attr]
        assert float(value) == pytest.approx(float(trace[name][tuple(int(i) for i in index.split(", "))]))
