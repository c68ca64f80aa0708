"""The explainer page: every view full-page and as an htmx fragment, with the Trace's own numbers on it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.state import REFERENCE_PROMPTS, State, text_digest
from model import GPT2, sample
from model.sampling import DEFAULT_TEMPERATURE
from tests.web.conftest import HX, parse

TEXT = "Data visualization empowers users to"


def ids_of(gpt2: GPT2, text: str = TEXT) -> list[int]:
    return [t.id for t in gpt2.tokenize(text)]


@pytest.mark.parametrize("view", ["attention", "embedding", "mlp", "residual"])
def test_every_view_renders_full_page_and_fragment(client: TestClient, view: str) -> None:
    full = client.get("/", params={"text": TEXT, "view": view})
    assert full.status_code == 200
    assert full.text.startswith("<!doctype html>")
    page = parse(full.text)
    page.one("section", id="panel")
    page.one("section", id="output")
    page.one("section", id="overview")

    fragment = client.get("/", params={"text": TEXT, "view": view}, headers={**HX, "HX-Target": "page"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<main id="page"')
    assert fragment.headers["HX-Push-Url"].startswith("/?text=Data%20visualization")
    assert f"view={view}" in fragment.headers["HX-Push-Url"]


def test_token_chips_show_the_tokenizers_ids(client: TestClient, gpt2: GPT2) -> None:
    page = parse(client.get("/", params={"text": TEXT}).text)
    chips = page.all("a", data_id="*", data_position="*")
    assert [int(c["data-id"]) for c in chips] == [6601, 32704, 795, 30132, 2985, 284]
    assert [int(c["data-id"]) for c in chips] == ids_of(gpt2)
    assert "sel" in chips[-1]["class"]  # the last token is selected by default


def test_the_tokens_panel_says_how_it_read_end_of_text(client: TestClient) -> None:
    text = "The end.<|endoftext|>Once upon a time"
    page = parse(client.get("/", params={"text": text}).text)
    chips = page.all("a", data_id="*", data_position="*")
    assert 50256 not in [int(c["data-id"]) for c in chips]
    note = "“<|endoftext|>” in your text is read as its characters, several ordinary tokens, not as GPT-2's"
    assert note in page.all_text and "(id 50256)" in page.all_text
    assert "end-of-text" not in parse(client.get("/", params={"text": TEXT}).text).all_text
    zh = parse(client.get("/", params={"text": text, "lang": "zh-CN"}).text).all_text
    assert "“<|endoftext|>”按普通字符读取" in zh


def test_selected_token_is_marked(client: TestClient) -> None:
    page = parse(client.get("/", params={"text": TEXT, "token": "2"}).text)
    chips = page.all("a", data_id="*", data_position="*")
    assert "sel" in chips[1]["class"] and "sel" not in chips[-1]["class"]
    assert "aria-current" in chips[1]


def test_output_bars_are_the_samplers_probabilities(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "temperature": "1.7", "top_k": "5"}).text
    s = sample(gpt2.trace(ids_of(gpt2)).logits, 1.7, top_k=5, seed=0)
    rows = parse(html).all("tr", data_prob="*", data_id="*")
    assert len(rows) >= 10
    for row in rows:
        i = int(row["data-id"])
        assert float(row["data-prob"]) == pytest.approx(s.probs[i], rel=1e-9, abs=1e-15)
        assert float(row["data-prob-all"]) == pytest.approx(s.probs_all[i], rel=1e-9)
    kept = [r for r in rows if float(r["data-prob"]) > 0]
    assert len(kept) == 5  # top-k 5 keeps exactly five
    output = parse(html).one("section", id="output")
    assert output["data-temperature"] == "1.7"
    assert int(output["data-sampled"]) == s.token
    assert float(output["data-kept-mass"]) == pytest.approx(s.kept_mass)


def test_temperature_changes_the_probabilities(client: TestClient) -> None:
    def top_prob(t: str) -> float:
        rows = parse(client.get("/", params={"text": TEXT, "temperature": t}).text).all("tr", data_prob="*")
        return float(rows[0]["data-prob"])

    assert top_prob("0.1") > top_prob("1") > top_prob("5")


def panel_of(html: str) -> str:
    """The open detail panel's part of a page (the overview above it draws values of its own)."""
    return html[html.index('<section id="panel"') :]


def test_attention_heatmap_is_the_traces(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "layer": "2", "head": "3", "step": "probs"}).text
    probs = gpt2.trace(ids_of(gpt2))["block1.attn.probs"][2]
    svg = parse(html).one("svg", data_name="block1.attn.probs", **{"class": "fig heatmap main-map"})
    assert svg["data-rows"] == str(probs.shape[0])
    cells = [float(c["data-value"]) for c in parse(panel_of(html)).all("rect", data_value="*")]
    n = probs.shape[0]
    assert np.allclose(cells[: n * n], probs.reshape(-1), atol=1e-7)  # row by row; above the diagonal: 0
    assert 'aria-current="step"' in html


def test_masked_step_leaves_the_future_blank(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "step": "masked"}).text
    masked = gpt2.trace(ids_of(gpt2))["block0.attn.masked"][0]
    n = masked.shape[0]
    squares = parse(panel_of(html)).all("rect", data_value="*")
    svg_cells = [float(c["data-value"]) for c in squares][: n * (n + 1) // 2]
    assert np.allclose(svg_cells, masked[np.tril_indices(n)], atol=1e-7)
    assert "-inf" not in [c["data-value"] for c in parse(html).all("rect", data_value="*")]


@pytest.mark.parametrize("step", ["qkv", "scores", "scaled", "masked", "probs", "heads", "concat", "out"])
def test_every_attention_step_renders(client: TestClient, step: str) -> None:
    r = client.get("/", params={"text": TEXT, "step": step, "layer": "2", "head": "4"})
    assert r.status_code == 200
    assert parse(r.text).one("div", data_step=step)


def test_embedding_cells_are_the_traces(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "view": "embedding"}).text
    trace = gpt2.trace(ids_of(gpt2))
    page = parse(html)
    assert page.one("svg", data_name="embed.sum")
    values = [float(c["data-value"]) for c in parse(panel_of(html)).all("rect", data_value="*")]
    n = trace.n_tokens
    token, position, total = (
        trace[name][:, :16].reshape(-1) for name in ("embed.token", "embed.position", "embed.sum")
    )
    assert np.allclose(values[: n * 16], token, atol=1e-7)
    assert np.allclose(values[n * 16 : 2 * n * 16], position, atol=1e-7)
    assert np.allclose(values[2 * n * 16 : 3 * n * 16], total, atol=1e-7)


def test_layernorm_stats_are_the_traces(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "view": "residual", "layer": "2"}).text
    trace = gpt2.trace(ids_of(gpt2))
    page = parse(html)
    for name in ("block1.ln1", "block1.ln2", "final.ln"):
        assert page.one("table", data_name=name)
    rows = page.all("tr", data_mean="*")
    mean, std = trace.ln_stats("block1.ln1")
    n = trace.n_tokens
    assert np.allclose([float(r["data-mean"]) for r in rows[:n]], mean, atol=1e-7)
    assert np.allclose([float(r["data-std"]) for r in rows[:n]], std, rtol=1e-7)


def test_mlp_top_neurons_are_the_traces(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "view": "mlp", "layer": "1"}).text
    act = gpt2.trace(ids_of(gpt2))["block0.mlp.act"]
    cells = parse(html).all("td", data_neuron="*")
    first = cells[:5]  # the first token's five most active neurons, largest first
    assert [int(c["data-neuron"]) for c in first] == list(np.argsort(-act[0], kind="stable")[:5])
    assert np.allclose([float(c["data-value"]) for c in first], np.sort(act[0])[::-1][:5], atol=1e-7)


def test_logit_lens_is_the_traces(client: TestClient, gpt2: GPT2) -> None:
    lens = gpt2.trace(ids_of(gpt2)).lens(1)
    items = parse(client.get("/", params={"text": TEXT}).text).all("li", data_block="*")
    assert [int(i["data-id"]) for i in items] == [row.ids[0] for row in lens]
    assert np.allclose([float(i["data-prob"]) for i in items], [row.probs[0] for row in lens])


def test_overview_marks_selected_block_and_head(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "layer": "2", "head": "3"}).text
    svg = parse(html).one("svg", **{"class": "fig sankey"})
    assert (svg["data-layer"], svg["data-head"]) == ("2", "3")
    assert "Block 2 of 2" in html and "Attention · head 3" in html
    # the attention lines of the selected (last) token carry head 3's probabilities
    probs = gpt2.trace(ids_of(gpt2))["block1.attn.probs"][2][-1]
    lines = [float(p["data-value"]) for p in parse(html).all("path", data_value="*", **{"class": "attn"})]
    assert np.allclose(lines, probs, atol=1e-7)


def test_expanded_overview_draws_every_block(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT, "expand": "1"}).text
    assert "Stack the blocks" in html
    assert 'aria-label="block 2"' in html or "block 2: attention" in html


def test_live_fragment_updates_output_overview_and_url(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT, "temperature": "2.5"}, headers={**HX, "HX-Target": "output"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith('<section id="output"')
    page = parse(r.text)
    assert page.one("svg", id="fan")["hx-swap-oob"] == "true"  # only the overview's ribbons
    assert page.all("section", id="overview") == []
    assert page.one("output", id="temperature-value")["hx-swap-oob"] == "true"
    assert "panel" not in [a.get("id") for a in page.all("section")]  # the panels are not re-rendered
    assert "temperature=2.5" in r.headers["HX-Replace-Url"]
    downloads = page.one("p", id="overview-downloads")
    assert downloads["hx-swap-oob"] == "true"
    # the share box keeps its tour link and languages
    assert page.all("a", hreflang="zh-CN") and page.all("a", **{"class": "tour-start"})


def test_live_fan_is_the_full_pages_fan(client: TestClient, gpt2: GPT2) -> None:
    """The ribbons swapped on a slider move are those the full page draws for the same URL."""
    params = {"text": TEXT, "temperature": "2.5", "top_k": "7"}
    live = client.get("/", params=params, headers={**HX, "HX-Target": "output"}).text
    full = client.get("/", params=params).text

    def fan(html: str) -> str:
        start = html.index('<svg id="fan"')
        return html[start : html.index("</svg>", start)].replace(' hx-swap-oob="true"', "")

    assert fan(live) == fan(full)
    s = sample(gpt2.trace(ids_of(gpt2)).logits, 2.5, top_k=7)
    cands = parse(fan(live) + "</svg>").all("rect", data_prob="*")
    assert [int(c["data-id"]) for c in cands] == [int(i) for i in s.kept_top(5)]
    assert [float(c["data-prob"]) for c in cands] == pytest.approx([float(s.probs[i]) for i in s.kept_top(5)])


def test_generate_appends_the_drawn_token(client: TestClient, gpt2: GPT2) -> None:
    ids = ids_of(gpt2)
    expected = sample(gpt2.trace(ids).logits, DEFAULT_TEMPERATURE, seed=0).token  # the page's default
    r = client.get("/", params={"text": TEXT, "action": "generate"}, follow_redirects=False)
    assert r.status_code == 303
    assert f"gen={expected}&gen_for={text_digest(TEXT)}" in r.headers["location"]
    page = parse(client.get(r.headers["location"]).text)
    chips = page.all("a", data_id="*", data_position="*")
    assert [int(c["data-id"]) for c in chips] == [*ids, expected]
    assert "gen" in chips[-1]["class"]
    timeline = [li for li in page.all("li", data_prob="*", data_id=str(expected)) if "data-block" not in li]
    z = gpt2.trace(ids).logits.astype(np.float64)
    p = np.exp(z[expected] - z.max()) / np.exp(z - z.max()).sum()
    assert len(timeline) == 1
    assert float(timeline[0]["data-prob"]) == pytest.approx(p)


def test_generate_with_htmx_pushes_the_new_url(client: TestClient, gpt2: GPT2) -> None:
    ids = ids_of(gpt2)
    greedy = int(np.argmax(gpt2.trace(ids).logits))
    r = client.get("/", params={"text": TEXT, "action": "greedy"}, headers={**HX, "HX-Target": "page"})
    assert r.status_code == 200
    assert f"gen={greedy}" in r.headers["HX-Push-Url"]
    assert "action" not in r.headers["HX-Push-Url"]
    second = client.get(r.headers["HX-Push-Url"] + "&action=greedy", follow_redirects=False)
    assert second.headers["location"].count(",") == 1  # two generated tokens


def test_undo_and_clear(client: TestClient, gpt2: GPT2) -> None:
    state = State(text=TEXT, gen=(11, 12), model="tiny")
    undo = client.get(state.url() + "&action=undo", follow_redirects=False)
    assert "gen=11&" in undo.headers["location"]
    clear = client.get(state.url() + "&action=clear", follow_redirects=False)
    assert "gen=" not in clear.headers["location"]


def test_editing_the_text_drops_the_generated_tokens(client: TestClient, gpt2: GPT2) -> None:
    stale = client.get("/", params={"text": "A new text", "gen": "11,12", "gen_for": text_digest(TEXT)})
    chips = parse(stale.text).all("a", data_id="*", data_position="*")
    assert [int(c["data-id"]) for c in chips] == ids_of(gpt2, "A new text")


def test_reference_prompts_are_offered(client: TestClient) -> None:
    page = parse(client.get("/").text)
    options = [o["value"] for o in page.all("option")]
    assert options == list(REFERENCE_PROMPTS)


def test_form_works_without_javascript(client: TestClient) -> None:
    page = parse(client.get("/", params={"text": TEXT}).text)
    form = page.one("form", id="controls")
    assert (form["action"], form["method"]) == ("/", "get")
    names = {i["name"] for i in page.all("input", name="*")}
    assert {"text", "temperature", "top_k", "top_p", "seed", "layer", "head", "view", "model"} <= names
    assert page.all("button", name="action", value="generate") and page.all(
        "button", name="action", value="greedy"
    )
    for a in page.all("a", hx_get="/"):  # every htmx link is also a plain permalink
        assert a["href"].startswith("/?text=")


def test_projector_mode(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT, "present": "1"}).text
    assert '<html lang="en" class="present">' in html


def test_untrained_note_is_shown(client: TestClient) -> None:
    assert "Untrained weights." in client.get("/").text


def test_security_headers_and_no_inline_code(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT})
    assert r.headers["content-security-policy"].startswith("default-src 'self'; frame-ancestors 'none'")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"]
    assert " style=" not in r.text and "<style" not in r.text
    page = parse(r.text)
    scripts = page.all("script")
    assert len(scripts) == 1 and scripts[0]["src"].startswith("/static/vendor/htmx.min.js")
    assert " on" not in "".join(f" {k}" for _, attrs in page.tags for k in attrs if k.startswith("on"))


def test_htmx_and_css_are_served(client: TestClient) -> None:
    js = client.get("/static/vendor/htmx.min.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert b"htmx" in js.content[:200]
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "immutable" in css.headers["cache-control"]


def test_the_page_the_api_and_the_cli_share_one_default_temperature(
    client: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    from app import cli
    from app.state import TEMPERATURE

    html = client.get("/", params={"text": TEXT}).text
    start = html.index('<svg id="fan"')
    fan = parse(html[start : html.index("</svg>", start) + 6]).all("rect", data_prob="*")
    page = [float(c["data-prob"]) for c in fan][:5]  # the five likeliest, as drawn
    api = client.get("/api/predict", params={"text": TEXT, "n": 5}).json()
    assert cli.main(["trace", "--model", "tiny", "--json", TEXT]) == 0
    terminal = json.loads(capsys.readouterr().out)["predictions"][:5]

    assert TEMPERATURE[2] == api["temperature"] == DEFAULT_TEMPERATURE
    assert page == pytest.approx([c["prob"] for c in api["top"]])
    assert [p["probability"] for p in terminal] == pytest.approx(page)
