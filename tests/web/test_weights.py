"""The weights behind the panels: every weight number drawn is the model's own at the same index (checked
against the safetensors file or the seeded synthetic weights), every product is the trace's tensor, and the
page shows exactly what the view drew."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import load_file

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from app.state import State
from app.views.tokens import selected_index
from app.views.weights import Drawn, draw_weights
from model import GPT2, GPT2Config, Trace, load_model
from model.mapped import MappedWeights
from model.sources import DEMO_DIR
from model.weights import Weights, synthetic_weights
from tests.web.conftest import Elements, parse

ROOT = Path(__file__).parents[2]
TEXT = "Data visualization empowers users to"
# every weight view: the attention's matrices by step, the MLP's, LayerNorm's, the embedding tables
VIEWS = [
    {"view": "attention", "step": "qkv"},
    {"view": "attention", "step": "out"},
    {"view": "mlp"},
    {"view": "residual"},
    {"view": "embedding"},
]
Named = Callable[[str], np.ndarray]


def named_from(weights: Weights, stored: MappedWeights) -> Named:
    """A weight by its name (block0.attn.w_k, ...), cut from GPT-2's own parameters (e.g. a file's)."""

    def named(name: str) -> np.ndarray:
        spec = stored.spec(name)
        whole = weights[spec.source]
        if len(spec.shape) == 1:
            return whole[spec.start : spec.start + spec.shape[0]]
        return whole[:, spec.start : spec.start + spec.shape[1]]

    return named


def check_numbers(drawn: Drawn, named: Named) -> int:
    """Every weight number the view draws equals the weight at its index; returns how many were checked."""
    checked = 0
    for p in drawn.products:
        w = named(p.matrix.name)
        cells = p.matrix.squares
        for r, c, value in zip(cells.rows, cells.cols, cells.values, strict=True):
            want = w[p.cols[c], p.rows[r]] if p.transposed else w[p.rows[r], p.cols[c]]
            assert np.float32(value) == want, (p.matrix.name, r, c)
            checked += 1
        if p.bias is not None:
            b = named(p.bias.name)
            for sq in p.bias.squares:
                assert np.float32(sq.value) == b[sq.index], p.bias.name
                checked += 1
    for g in drawn.gains:
        for v in (g.gamma, g.beta):
            for sq in v.squares:
                assert np.float32(sq.value) == named(v.name)[sq.index], v.name
                checked += 1
    for rows in drawn.rows:
        w = named(rows.matrix.name)
        cells = rows.matrix.squares
        for r, c, value in zip(cells.rows, cells.cols, cells.values, strict=True):
            assert np.float32(value) == w[rows.rows[r], rows.cols[c]], rows.matrix.name
            checked += 1
    return checked


def check_products(drawn: Drawn, trace: Trace, state: State) -> None:
    """Each "row @ matrix + bias" the view worked out is the trace's own tensor."""
    i = selected_index(state, trace.n_tokens)
    h = state.head - 1
    for p in drawn.products:
        name = p.equals
        if name == "logits":
            want = trace.logits[p.cols]
        elif name.endswith((".q", ".k", ".v")):  # the head's D numbers
            want = trace[name][h, i]
        else:  # attn.out, mlp.out: the drawn columns; mlp.pre: the shown neurons
            want = trace[name][i, p.cols]
        assert np.allclose(p.values, want, rtol=1e-4, atol=2e-5), name
    for g in drawn.gains:
        assert np.allclose(g.values, trace[g.equals][i, : len(g.values)], rtol=1e-4, atol=2e-5), g.name
    for rows in drawn.rows:  # the table rows the text picked are the embedding's vectors, bit for bit
        want = trace[rows.equals][:, rows.cols]
        assert np.array_equal(np.float32(rows.matrix.squares.values).reshape(want.shape), want)


def check_model(gpt2: GPT2, weights: Weights) -> int:
    """Every weight view of block 2, head 3, token 4: numbers, products, and the page that draws them."""
    stored = gpt2.weights_on_disk
    named = named_from(weights, stored)
    trace = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)])
    app = create_app(Settings(), Serving(gpt2=gpt2, source=gpt2.loaded.description))
    checked = 0
    with TestClient(app) as client:
        for view in VIEWS:
            state = State(text=TEXT, layer=2, head=3, token=4, weights=True, **view)  # type: ignore[arg-type]
            drawn = draw_weights(trace, state, stored, gpt2.tokenizer.token, 3)
            checked += check_numbers(drawn, named)
            check_products(drawn, trace, state)
            html = client.get(state.url()).text
            for p in [*drawn.products, *drawn.rows]:
                assert p.matrix.markup in html  # the page draws the view's squares, values and all
            page = parse(html)
            vectors = [p.bias for p in drawn.products if p.bias] + [
                v for g in drawn.gains for v in (g.gamma, g.beta)
            ]
            for v in vectors:
                shown = squares_of(page, "data-vector", v.name)
                assert shown == [(str(sq.index), sq.value) for sq in v.squares], v.name
    return checked


def squares_of(page: Elements, attr: str, name: str) -> list[tuple[str, str]]:
    """(data-index, data-value) of the squares of the first SVG whose `attr` is `name`, in order."""
    found: list[tuple[str, str]] = []
    inside = False
    for tag, attrs in page.tags:
        if tag == "svg":
            if inside:
                break
            inside = attrs.get(attr) == name
        elif inside and tag == "rect" and "data-value" in attrs:
            found.append((attrs.get("data-index", ""), attrs["data-value"]))
    return found


def safetensors_weights(path: Path) -> Weights:
    """A safetensors file's tensors as float32 under GPT-2's names (the demo's are stored as float16)."""
    return {k.removeprefix("transformer."): v.astype(np.float32) for k, v in load_file(str(path)).items()}


def test_the_demo_models_weights_are_the_files(tmp_path_factory: pytest.TempPathFactory) -> None:
    gpt2 = GPT2(load_model("demo"))
    assert check_model(gpt2, safetensors_weights(DEMO_DIR / "model.safetensors")) > 500


def test_the_tiny_models_weights_are_its_seeded_ones(gpt2: GPT2) -> None:
    assert check_model(gpt2, synthetic_weights(gpt2.config, 0)) > 500


@pytest.mark.slow
def test_gpt2_small_shaped_weights_are_its_seeded_ones() -> None:
    gpt2 = GPT2(load_model("random-gpt2"))  # GPT-2 small's shapes, synthetic_weights(seed 0)
    assert check_model(gpt2, synthetic_weights(GPT2Config(), 0)) > 500


def test_a_closed_panel_reads_no_weights(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "view": "mlp"}).text
    page = parse(html)
    toggle = page.one("a", **{"class": "weights-toggle"})
    assert "weights=1" in toggle["href"]
    assert not page.all("div", data_key="*")  # no weight drawn until asked
    opened = parse(client.get(toggle["href"]).text)
    assert [d["data-key"] for d in opened.all("div", data_key="*")] == ["w_in", "w_out"]
    assert "weights=1" not in opened.one("a", **{"class": "weights-toggle"})["href"]


def test_the_api_gives_a_bounded_slice_of_any_weight(client: TestClient, gpt2: GPT2) -> None:
    listed = client.get("/api/weights").json()["weights"]
    names = [w["name"] for w in listed]
    assert names[:2] == ["embed.wte", "embed.wpe"] and "block1.attn.w_v" in names and "final.ln.beta" in names
    w = synthetic_weights(gpt2.config, 0)
    c = gpt2.config.n_embd
    got = client.get("/api/weights/block1.attn.w_v", params={"rows": "3:5", "cols": "10:13"}).json()
    assert got["shape"] == [c, c] and got["rows"] == [3, 5] and got["cols"] == [10, 13]
    assert np.array_equal(
        np.float32(got["values"]), w["h.1.attn.c_attn.weight"][3:5, 2 * c + 10 : 2 * c + 13]
    )
    gamma = client.get("/api/weights/block0.ln2.gamma", params={"rows": "60:"}).json()
    assert np.array_equal(np.float32(gamma["values"]), w["h.0.ln_2.weight"][60:])
    assert client.get("/api/weights/embed.wte", params={"rows": "0:50000"}).status_code == 400  # too many
    assert client.get("/api/weights/block9.mlp.w_in").status_code == 404  # the tiny model has 2 blocks
    bad = client.get("/api/weights/block0.mlp.w_in", params={"cols": "9:3"})
    assert bad.status_code == 400 and "0:256" in bad.json()["detail"]


@pytest.fixture()
def generated(client: TestClient) -> Iterator[str]:
    """The permalink after Run and three presses of Generate (each press extends the cached trace)."""
    url = f"/?text={TEXT.replace(' ', '+')}"
    for _ in range(3):
        r = client.get(url + "&action=generate", follow_redirects=False)
        assert r.status_code == 303
        url = r.headers["location"]
    yield url


def test_the_kv_cache_view_shows_the_full_traces_keys_and_values(
    client: TestClient, gpt2: GPT2, generated: str
) -> None:
    gen = [int(x) for x in parse_qs(urlparse(generated).query)["gen"][0].split(",")]
    prompt = [t.id for t in gpt2.tokenize(TEXT)]
    assert len(gen) == 3
    full = gpt2.engine.trace(prompt + gen)  # one run of the whole text, nothing from the cache
    for layer, head in ((1, 1), (2, 3)):
        page = parse(client.get(generated + f"&view=kv&layer={layer}&head={head}").text)
        for x in ("k", "v"):
            name = f"block{layer - 1}.{x}"
            parts = page.all("svg", data_name=name)
            assert [int(p["data-rows"]) for p in parts] == [len(prompt), 3]  # the prompt's, the generated
            shown = squares_of(page, "data-name", name) + squares_of_second(page, name)
            got = np.array([float(v) for _, v in shown]).reshape(-1, 16)
            assert np.allclose(got, full[name][head - 1][:, :16], atol=1e-5), name
        newest = page.one("tr", **{"class": "sel"})
        assert newest is not None
    text = parse(client.get(generated + "&view=kv").text).all_text
    assert "Generate 3" in text and "The cache holds 9 tokens: 6 from the prompt and 3 generated." in text


def squares_of_second(page: Elements, name: str) -> list[tuple[str, str]]:
    """The squares of the second SVG called `name` (the generated tokens' rows)."""
    found: list[tuple[str, str]] = []
    seen, inside = 0, False
    for tag, attrs in page.tags:
        if tag == "svg":
            seen += attrs.get("data-name") == name
            inside = attrs.get("data-name") == name and seen == 2
        elif inside and tag == "rect" and "data-value" in attrs:
            found.append(("", attrs["data-value"]))
    return found


@pytest.mark.slow
def test_opening_the_weight_views_keeps_a_workers_memory() -> None:
    """bench/weights_memory.py on GPT-2 small's shapes: a worker's RSS after every block's weight views stays
    within 5 % of its RSS after the same views closed (475 MB of weights are never read in whole)."""
    cmd = [sys.executable, "bench/weights_memory.py", "--texts", "1", "--only", "off"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout + run.stderr
    last = dict(part.split("=") for part in run.stdout.strip().splitlines()[-1].split())
    before, after = float(last["rss_before_mb"]), float(last["rss_after_mb"])
    assert before > 500  # the model is loaded
    assert after <= 1.05 * before, run.stdout
