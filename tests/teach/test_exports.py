"""Exports: every panel as SVG, PNG, CSV and JSON, each a valid file holding the page's figure or numbers."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.png import MONO, SANS
from app.state import State
from app.views.numbers import PANELS, table_names
from app.views.slider import STOPS
from model import GPT2
from model.weights import synthetic_weights
from tests.teach.conftest import query_of
from tests.web.conftest import parse

TEXT = "Data visualization empowers users to"
SVG = "{http://www.w3.org/2000/svg}"
CONTROLS = {"text": TEXT, "layer": "2", "head": "3", "token": "4", "temperature": "1.3", "top_k": "7"}


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's signature and IHDR chunk (a valid PNG starts this way)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("panel", PANELS)
def test_svg_and_png_of_every_panel(client: TestClient, panel: str) -> None:
    svg = client.get(f"/export/{panel}.svg", params={**CONTROLS, "step": "probs"})
    assert svg.status_code == 200
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.headers["content-disposition"].startswith('attachment; filename="glassbox-')
    root = ET.fromstring(svg.content)  # a standalone, well-formed SVG document
    assert root.tag == f"{SVG}svg"
    width, height = float(root.attrib["width"]), float(root.attrib["height"])
    assert width > 100 and height > 50
    assert root.find(f"{SVG}style") is not None  # its look travels with it
    assert root.find(f"{SVG}title") is not None
    png = client.get(f"/export/{panel}.png", params={**CONTROLS, "step": "probs"})
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png_size(png.content) == (round(2 * width), round(2 * height))


@pytest.mark.parametrize("step", ["qkv", "scores", "scaled", "masked", "probs", "heads", "concat", "out"])
def test_attention_exports_follow_the_step(client: TestClient, gpt2: GPT2, step: str) -> None:
    r = client.get("/export/attention.json", params={**CONTROLS, "step": step})
    tables = r.json()["tables"]
    state = State(layer=2, head=3, step=step)
    assert [t["name"] for t in tables] == table_names("attention", state, gpt2.config)
    trace = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)])
    for t in tables:
        name = t["name"]
        if name in trace:
            want = trace[name][2] if trace[name].ndim == 3 else trace[name]  # head 3 of [H, T, ...]
            got = np.array([[np.nan if v is None else v for v in r] for r in t["values"]], dtype=np.float64)
            finite = np.isfinite(want)
            assert got.shape == want.shape
            assert np.allclose(got[finite], want[finite], atol=1e-6)
            assert np.isnan(got[~finite]).all()  # the mask's -inf is null in JSON


def expected_table(panel: str, name: str, gpt2: GPT2) -> np.ndarray:
    """What a CSV of CONTROLS (block 2, head 3, token 4, step probs) must hold, from the Trace."""
    trace = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)])
    length = lambda x: np.linalg.norm(np.asarray(x, dtype=np.float64), axis=-1)  # noqa: E731
    if panel == "overview":
        return {
            "block1.attn.probs": trace["block1.attn.probs"][2][3].reshape(-1, 1),  # the lines of token 4
            "norm(block1.mlp.out)": length(trace["block1.mlp.out"]).reshape(-1, 1),
        }.get(name, np.empty((10, 2)))  # logits: the 10 likeliest, logit and probability
    if panel == "tokens":
        return np.array(trace.ids).reshape(-1, 1)
    if panel == "weights":  # behind the attention panel's probs step: head 3's columns of w_q, b_q, w_k, b_k
        w = synthetic_weights(gpt2.config, 0)
        d = gpt2.config.head_dim
        k = {"q": 0, "k": 1}[name.split("_")[-1]]
        cols = slice((k * gpt2.config.n_head + 2) * d, (k * gpt2.config.n_head + 3) * d)
        if ".w_" in name:
            return w["h.1.attn.c_attn.weight"][:, cols]
        return w["h.1.attn.c_attn.bias"][cols].reshape(1, -1)
    if panel == "lens":
        return np.array([[r.probs[0]] for r in trace.lens(1)])
    if panel == "output":
        return np.empty((10, 4))
    if panel == "heads":  # each head alone switched off: the change in the top token's probability
        return gpt2.head_sweep(list(trace.ids)).change
    if panel == "residual":
        if name == "norm(residual)":
            stages = ["embed.sum", "block0.resid.mid", "block0.resid.out"]
            stages += ["block1.resid.mid", "block1.resid.out"]
            return np.stack([length(trace[x]) for x in stages], axis=1)
        return np.stack(trace.ln_stats(name), axis=1)
    if name.startswith("norm("):
        return length(trace["block1.attn.heads"]).T
    tensor = trace[name]
    return tensor[2] if tensor.ndim == 3 else tensor  # [H, T, ...]: head 3


@pytest.mark.parametrize("panel", PANELS)
def test_csv_columns_match_the_tensor(client: TestClient, gpt2: GPT2, panel: str) -> None:
    names = table_names(panel, State(layer=2, head=3, step="probs"), gpt2.config)
    for k, name in enumerate(names):
        params = {**CONTROLS, "step": "probs", **({"tensor": name} if k else {})}
        r = client.get(f"/export/{panel}.csv", params=params)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        header, *body = list(csv.reader(io.StringIO(r.text)))
        assert all(len(row) == len(header) for row in body)
        # columns of row labels: the block (heads), a weight's row number; else place, token and id
        labels = {"heads": 1, "weights": 1}.get(panel, 3)
        values = np.array([[float(v) for v in row[labels:]] for row in body])
        want = expected_table(panel, name, gpt2)
        assert values.shape == want.shape, name  # one row per token (or candidate, or block), one column each
        if panel not in ("output",) and name != "logits":
            finite = np.isfinite(want)
            assert np.allclose(values[finite], want[finite], rtol=1e-6, atol=1e-7), name
            assert (values[~finite] == -np.inf).all()


def test_csv_of_the_embedding_has_every_number(client: TestClient, gpt2: GPT2) -> None:
    r = client.get("/export/embedding.csv", params={"text": TEXT, "tensor": "embed.position"})
    header, *body = list(csv.reader(io.StringIO(r.text)))
    assert header[:3] == ["position", "token", "id"] and len(header) == 3 + gpt2.config.n_embd
    assert [row[2] for row in body] == ["6601", "32704", "795", "30132", "2985", "284"]
    assert "glassbox-embedding-embed.position.csv" in r.headers["content-disposition"]


def test_json_holds_every_table_with_tensor_names(client: TestClient, gpt2: GPT2) -> None:
    for panel in PANELS:
        body = client.get(f"/export/{panel}.json", params=CONTROLS).json()
        assert body["panel"] == panel and body["model"] == gpt2.name
        assert [t["id"] for t in body["tokens"]] == [6601, 32704, 795, 30132, 2985, 284]
        assert body["controls"]["top_k"] == "7"
        for t in body["tables"]:
            assert len(t["values"]) == len(t["rows"])
            assert all(len(row) == len(t["columns"]) for row in t["values"])
            assert re.fullmatch(r"(norm\()?[a-z0-9_.]+\)?", t["name"]) or t["name"] == "norm(residual)"


def test_output_numbers_are_the_samplers(client: TestClient, gpt2: GPT2) -> None:
    from model import sample

    s = sample(gpt2.trace([t.id for t in gpt2.tokenize(TEXT)]).logits, 1.3, top_k=7, seed=0)
    table = client.get("/export/output.json", params=CONTROLS).json()["tables"][0]
    assert table["name"] == "logits" and table["columns"][-1] == "prob"
    for (_rank, _label, token_id), values in zip(table["rows"], table["values"], strict=True):
        assert values[-1] == pytest.approx(s.probs[token_id], abs=1e-12)
        assert values[-2] == pytest.approx(s.probs_all[token_id], rel=1e-9)
    assert sum(1 for v in table["values"] if v[-1] > 0) == 7


def test_the_exported_svg_is_the_one_on_the_page(client: TestClient) -> None:
    params = {"text": TEXT, "layer": "2", "head": "3", "step": "probs"}
    page = client.get("/", params=params).text
    export = client.get("/export/attention.svg", params=params).text

    def heatmap(doc: str) -> str:
        return re.search(r'<svg class="fig heatmap main-map".*?</svg>', doc, re.S).group(0)  # type: ignore[union-attr]

    assert heatmap(page) == heatmap(export)
    sankey_page = re.search(r'<svg class="fig sankey".*?</svg>', client.get("/", params=params).text, re.S)
    exported = client.get("/export/overview.svg", params=params).text
    sankey_export = re.search(r'<svg class="fig sankey".*?</svg>', exported, re.S)
    assert sankey_page and sankey_export

    # the same drawing; only the links are absolute in the file (so they still open the live view), and the
    # figure names itself instead of pointing at the page's heading
    def same(svg: str) -> str:
        svg = svg.replace('href="http://testserver/', 'href="/')
        return re.sub(r'\s+aria-label(ledby)?="(overview-title|The whole computation)"', "", svg)

    # the page's fan holds every stop of the temperature slider and opens the output panel below it; the
    # file's holds the page's own temperature and links to the live view
    def fan(svg: str, stop: str) -> str:
        start = svg.index(f"<g{stop} data-temperature=")
        return svg[start : svg.index("</g>", start)].split(">", 1)[1]

    page_svg, export_svg = sankey_page.group(0), sankey_export.group(0)
    assert same(export_svg[: export_svg.index('<svg id="fan"')]) == same(
        page_svg[: page_svg.index('<svg id="fan"')]
    )
    assert fan(export_svg, "") == fan(page_svg, f' class="at s{STOPS.index(1.0)}"')  # the default, 1


def test_every_panel_on_the_page_links_its_exports(client: TestClient) -> None:
    for view in ("attention", "embedding", "mlp", "residual"):
        page = parse(client.get("/", params={"text": TEXT, "view": view, "head": "2"}).text)
        links = [a["href"] for a in page.all("a", download="*")]
        panels = {re.match(r"/export/(\w+)\.", href).group(1) for href in links}  # type: ignore[union-attr]
        assert panels == {"overview", "tokens", view, "output", "lens"}
        for href in links:
            assert href.startswith("/export/") and query_of(href)["head"] == "2"
        for href in [h for h in links if f"/export/{view}." in h]:
            r = client.get(href)
            assert r.status_code == 200, href
            assert r.headers["content-disposition"].startswith("attachment")


def test_permalink_to_copy_without_javascript(client: TestClient) -> None:
    page = parse(client.get("/", params={"text": TEXT, "layer": "2", "head": "4"}).text)
    box = page.one("input", id="permalink")
    assert "readonly" in box
    assert box["value"].startswith("http://testserver/?text=Data%20visualization")
    assert query_of(box["value"])["head"] == "4"


def test_bad_export_requests_get_clear_4xx(client: TestClient) -> None:
    r = client.get("/export/nothing.svg", params={"text": TEXT})
    assert r.status_code == 404 and "attention" in r.json()["detail"]
    assert client.get("/export/attention.gif", params={"text": TEXT}).status_code == 404
    r = client.get("/export/attention.svg", params={"text": ""})
    assert r.status_code == 400 and "Type some text" in r.json()["detail"]
    r = client.get("/export/attention.csv", params={"text": TEXT, "tensor": "block9.q"})
    assert r.status_code == 400 and "block0.q" in r.json()["detail"]


def test_svg_export_survives_hostile_text(client: TestClient) -> None:
    text = 'a <script>alert(1)</script> & "b" \x01 ]]> =SUM(1)'
    r = client.get("/export/tokens.svg", params={"text": text})
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    assert not list(root.iter(f"{SVG}script"))
    rows = list(csv.reader(io.StringIO(client.get("/export/tokens.csv", params={"text": "=SUM(1)"}).text)))
    assert rows[1][1] == "'=" and rows[1][2] == "3d"  # a spreadsheet does not run it


def test_png_font_stacks_match_the_stylesheet() -> None:
    from app.service.export import figures_css

    css = figures_css()
    assert SANS in css and MONO in css


def test_json_export_has_no_nan(client: TestClient) -> None:
    body = client.get("/export/attention.json", params={"text": TEXT, "step": "masked"}).text
    assert "NaN" not in body and "Infinity" not in body
    assert json.loads(body)["tables"][0]["values"][0][1] is None  # the first token cannot see the second


def test_big_figures_make_a_bounded_png() -> None:
    from app.png import MAX_SIDE, png_scale

    assert png_scale(800, 400) == 2.0
    assert max(5000, 3000) * png_scale(5000, 3000) == pytest.approx(MAX_SIDE)


@pytest.mark.parametrize("panel", ["tokens", "embedding", "attention", "output"])
def test_csv_text_cells_never_start_a_formula(client: TestClient, panel: str) -> None:
    text = "x->y x+=1 @a\t=b"
    r = client.get(f"/export/{panel}.csv", params={"text": text})
    assert r.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(r.text)) for cell in row]

    for cell in cells:
        if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
            float(cell)  # only numbers (negative ones) may start so; a text cell would raise here
    if panel == "tokens":
        assert {"'->", "'+=", "'="} <= set(cells)  # the tokens -> += = (others begin with a space)
