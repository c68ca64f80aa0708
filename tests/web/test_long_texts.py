"""Long texts keep the page light: big heatmaps are drawn compactly, the all-heads grid is shrunk."""

from __future__ import annotations

import re

import numpy as np
from fastapi.testclient import TestClient

from app.views.colour import LEVELS, SEQUENTIAL, _mix
from app.views.heatmap import COMPACT_CELLS, Axes, Look, heatmap, pool_max
from model import GPT2

LONG = " ".join(f"word{i}" for i in range(15))  # 30 tokens with the GPT-2 tokenizer


def test_pool_max_takes_the_largest_entry_of_each_block() -> None:
    m = np.random.default_rng(0).random((30, 29))
    pooled = pool_max(m, 8)
    rows = np.linspace(0, 30, 9).astype(int)
    cols = np.linspace(0, 29, 9).astype(int)
    expected = [[m[rows[i] : rows[i + 1], cols[j] : cols[j + 1]].max() for j in range(8)] for i in range(8)]
    np.testing.assert_array_equal(pooled, expected)
    small = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(pool_max(small, 8), small)  # nothing to shrink


def test_a_compact_heatmap_draws_each_finite_square_once_in_its_rounded_colour() -> None:
    n = 60
    assert n * n > COMPACT_CELLS
    rng = np.random.default_rng(1)
    m = rng.random((n, n))
    m[np.triu_indices(n, 1)] = -np.inf  # the causal mask stays blank
    h = heatmap("x", m, Axes([""] * n, [""] * n, left=10, top=4), Look(cell=3, signed=False))
    assert h.squares.values == [] and h.paths is not None
    scale = 1.0  # probabilities: the sequential scale runs from 0 to 1
    seen = {}
    for fill, d in h.paths:
        for x, y in re.findall(r"M([\d.]+) ([\d.]+)h3v3h-3z", d):
            r, c = round((float(y) - 4) / 3), round((float(x) - 10) / 3)
            assert (r, c) not in seen
            seen[(r, c)] = fill
        assert len(re.findall(r"M", d)) == len(re.findall(r"z", d))
    assert set(seen) == {(r, c) for r in range(n) for c in range(r + 1)}
    for (r, c), fill in seen.items():
        level = round(m[r, c] / scale * (LEVELS - 1))
        assert fill == _mix(SEQUENTIAL, level / (LEVELS - 1))
    markup = str(h.svg_cells)
    assert markup.count("<path") == len(h.paths) and "<rect" not in markup


def test_heatmap_titles_are_escaped() -> None:
    labels = ["<script>alert(1)</script>", '"><img onerror=x>']
    h = heatmap("x", np.ones((2, 2)), Axes(labels, labels, describe="{row} / {col}: "))
    markup = str(h.svg_cells)
    assert "<script>" not in markup and "<img" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; / &quot;&gt;&lt;img onerror=x&gt;" in markup
    assert markup.count("<title>") == 4


def test_the_all_heads_grid_of_a_long_text_is_shrunk_to_block_maxima(client: TestClient, gpt2: GPT2) -> None:
    ids = [t.id for t in gpt2.tokenize(LONG)]
    n = len(ids)
    assert n > 24
    r = client.get("/", params={"text": LONG, "view": "attention", "layer": "1"})
    assert r.status_code == 200
    probs = gpt2.trace(ids)["block0.attn.probs"]
    thumbs = re.findall(r'<a [^>]*class="thumb.*?</a>', r.text, re.S)
    assert len(thumbs) == gpt2.config.n_head
    cell = 2.5  # 64 / 24 squares, rounded down to a quarter
    for j, thumb in enumerate(thumbs):
        assert "<rect" not in thumb.split("<svg", 1)[1].split("</svg>")[0]  # compact: paths only
        pooled = pool_max(probs[j].astype(np.float64), 24)
        seen = {}
        for fill, d in re.findall(r'<path fill="(#[0-9a-f]{6})" d="([^"]+)"', thumb):
            for x, y in re.findall(rf"M([\d.]+) ([\d.]+)h{cell}v{cell}h-{cell}z", d):
                seen[(round(float(y) / cell), round(float(x) / cell))] = fill
        assert len(seen) == 24 * 24  # every square once (probabilities: none is masked out as -inf)
        for (row, col), fill in seen.items():
            assert fill == _mix(SEQUENTIAL, round(pooled[row, col] * (LEVELS - 1)) / (LEVELS - 1))
    k = -(-n // 24)
    assert f"up to {k} \u00d7 {k}" in r.text
