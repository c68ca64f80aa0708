"""Heads switched off (`ablate=`) on the explainer: the URL round-trips, the numbers before and after are
/api/predict's without and with the same ablation, the lens shows both runs, the heads panel is the sweep."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.state import MAX_ABLATE
from app.views.heads import square_text
from model import GPT2, Intervention
from tests.web.conftest import HX, parse

TEXT = "The doctor said that he"


def query(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href.replace("&amp;", "&")).query, keep_blank_values=True)


def test_ablate_round_trips_through_every_link_and_form(client: TestClient) -> None:
    r = client.get("/", params={"text": TEXT, "ablate": "2.3, 1.2,2.3", "view": "attention"})
    assert r.status_code == 200
    page = parse(r.text)
    permalink = page.one("input", id="permalink")["value"]
    assert query(permalink)["ablate"] == ["1.2,2.3"]  # sorted, each head once
    assert page.one("input", type="hidden", name="ablate")["value"] == "1.2,2.3"  # htmx links send it along
    links = [a["href"] for a in page.all("a", href="*") if a["href"].startswith("/?")]
    assert len(links) > 20
    keeps = [h for h in links if query(h).get("ablate") == ["1.2,2.3"]]
    toggles = {h for h in links if query(h).get("ablate") != ["1.2,2.3"]}
    assert len(keeps) > 20  # blocks, heads, steps, tabs, tokens, languages: all keep the heads off
    strip = page.one("section", id="ablation")
    assert strip["data-ablate"] == "1.2,2.3"
    assert {query(h).get("ablate", [""])[0] for h in toggles} >= {"1.2", "2.3", ""}  # each one back on; all
    for href in keeps[:5]:  # following a link keeps the same heads off
        again = parse(client.get(href).text)
        assert query(again.one("input", id="permalink")["value"])["ablate"] == ["1.2,2.3"]


def rows(html: str) -> dict[int, tuple[float, float]]:
    """The before/after table: id -> (before, after)."""
    return {
        int(t["data-id"]): (float(t["data-before"]), float(t["data-after"]))
        for t in parse(html).all("tr", data_id="*", data_before="*")
    }


@pytest.mark.parametrize(
    "controls", [{}, {"temperature": "0.7", "top_k": "5"}, {"top_p": "0.5", "seed": "3"}]
)
def test_before_and_after_equal_the_api_without_and_with_the_ablation(client: TestClient, controls) -> None:
    params = {"text": TEXT, "ablate": "1.1,2.4", **controls}
    page = client.get("/", params=params)
    live = client.get("/", params=params, headers={**HX, "HX-Target": "output"})  # a filter slider moved
    settled = client.get("/", params=params, headers={**HX, "HX-Target": "share"})  # the temperature's rested
    api = {k: v for k, v in controls.items()} | {"text": TEXT, "n": "100"}
    before = {c["id"]: c["prob"] for c in client.get("/api/predict", params=api).json()["top"]}
    after_json = client.get("/api/predict", params={**api, "ablate": "1.1,2.4"}).json()
    after = {c["id"]: c["prob"] for c in after_json["top"]}
    assert after_json["intervention"]["ablate"] == "1.1,2.4"
    assert parse(settled.text).one("div", id="before-after")["hx-swap-oob"] == "true"  # swapped in place
    for html in (page.text, live.text):
        assert parse(html).one("div", id="before-after").get("hx-swap-oob") is None  # inside the panel
    for html in (page.text, live.text, settled.text):
        got = rows(html)
        assert len(got) >= 8
        for token, (b, a) in got.items():
            assert b == pytest.approx(before[token], abs=1e-12)
            assert a == pytest.approx(after[token], abs=1e-12)
    assert before != after  # switching heads off changed the numbers
    assert parse(page.text).one("div", data_same_top="*")  # the before/after block, titled in words
    assert "With block 1 head 1, block 2 head 4 switched off" in parse(page.text).all_text


def test_the_lens_shows_both_runs(client: TestClient, gpt2: GPT2) -> None:
    html = client.get("/", params={"text": TEXT, "ablate": "1.3"}).text
    ids = [t.id for t in gpt2.tokenize(TEXT)]
    clean, cut = gpt2.trace(ids), gpt2.trace(ids, Intervention(ablate=frozenset({(0, 2)})))
    found = parse(html).all("tr", data_block="*", data_before_prob="*")
    assert len(found) == gpt2.config.n_layer
    for row, b, a in zip(found, clean.lens(1), cut.lens(1), strict=True):
        assert int(row["data-before"]) == b.ids[0] and float(row["data-before-prob"]) == pytest.approx(
            b.probs[0]
        )
        assert int(row["data-after"]) == a.ids[0] and float(row["data-after-prob"]) == pytest.approx(
            a.probs[0]
        )
    plain = client.get("/", params={"text": TEXT}).text
    assert not parse(plain).all("tr", data_before_prob="*")  # every head on: one lens, no pairs
    assert not parse(plain).all("section", id="ablation")


def test_the_attention_panel_and_its_grid_switch_each_head_off_and_on(client: TestClient) -> None:
    params = {"text": TEXT, "view": "attention", "layer": "2", "head": "3", "step": "probs", "ablate": "1.4"}
    page = parse(client.get("/", params=params).text)
    switch = page.one("p", data_block="2", data_head="3")
    assert "off" not in switch["class"]
    off = next(a for a in page.all("a", data_toggle="2.3") if a["class"] == "switch")
    q = query(off["href"])
    assert (
        q["ablate"] == ["1.4,2.3"]
        and q["view"] == ["attention"]
        and q["layer"] == ["2"]
        and q["head"] == ["3"]
    )
    toggles = [a for a in page.all("a", data_toggle="*") if "head-toggle" in a["class"]]
    assert [a["data-toggle"] for a in toggles] == ["2.1", "2.2", "2.3", "2.4"]  # the all-heads grid
    assert [query(a["href"])["ablate"] for a in toggles] == [[f"1.4,2.{h}"] for h in (1, 2, 3, 4)]
    # following the panel's link: head 3 is off, its attention is zero, and the same places switch it on
    after = client.get(off["href"].replace("&amp;", "&"))
    assert after.status_code == 200
    page = parse(after.text)
    assert query(page.one("input", id="permalink")["value"])["ablate"] == ["1.4,2.3"]
    switch = page.one("p", data_block="2", data_head="3")
    assert "off" in switch["class"]
    on = next(a for a in page.all("a", data_toggle="2.3") if a["class"] == "switch")
    assert query(on["href"])["ablate"] == ["1.4"]
    toggles = [a for a in page.all("a", data_toggle="*") if "head-toggle" in a["class"]]
    assert [query(a["href"])["ablate"] for a in toggles] == [
        ["1.4,2.1,2.3"],
        ["1.4,2.2,2.3"],
        ["1.4"],
        ["1.4,2.3,2.4"],
    ]
    assert ["off" in a["class"] for a in toggles] == [False, False, True, False]
    probs = client.get("/export/attention.json", params={**params, "ablate": "1.4,2.3"}).json()
    assert not np.nan_to_num(np.array(probs["tables"][0]["values"], dtype=float)).any()


def test_the_overview_shows_the_new_prediction_beside_the_original(client: TestClient) -> None:
    page = parse(client.get("/", params={"text": TEXT, "ablate": "1.1,2.4", "top_k": "2"}).text)
    items = page.all("li", data_id="*", data_before="*", data_change="*")
    assert len(items) == 3
    api = {"text": TEXT, "n": "50"}  # temperature 1 and no filter: the model's own probabilities
    before = {c["id"]: c["prob"] for c in client.get("/api/predict", params=api).json()["top"]}
    after_top = client.get("/api/predict", params={**api, "ablate": "1.1,2.4"}).json()["top"]
    after = {c["id"]: c["prob"] for c in after_top}
    assert [int(i["data-id"]) for i in items] == [
        c["id"] for c in after_top[:3]
    ]  # the likeliest with heads off
    for item in items:
        token = int(item["data-id"])
        assert float(item["data-before"]) == pytest.approx(before[token], abs=1e-12)
        assert float(item["data-after"]) == pytest.approx(after[token], abs=1e-12)
        assert float(item["data-change"]) == pytest.approx(after[token] - before[token], abs=1e-12)
    assert "With block 1 head 1, block 2 head 4 switched off" in page.all_text
    assert not parse(client.get("/", params={"text": TEXT}).text).all("li", data_change="*")


def test_the_panels_show_the_run_with_the_heads_off(client: TestClient) -> None:
    r = client.get(
        "/export/attention.json",
        params={"text": TEXT, "layer": "2", "head": "3", "step": "probs", "ablate": "2.3"},
    )
    body = r.json()
    assert body["controls"]["ablate"] == "2.3"  # the export carries it
    probs = np.array(body["tables"][0]["values"], dtype=float)
    assert not np.nan_to_num(probs).any()  # head 3 of block 2 is off: its attention is all zero
    on = client.get(
        "/export/attention.json", params={"text": TEXT, "layer": "2", "head": "3", "step": "probs"}
    )
    assert np.nan_to_num(np.array(on.json()["tables"][0]["values"], dtype=float)).any()
    # the softmax step says why its row is all zero, instead of naming a favourite token at 0 %
    off = "This head is switched off: its attention probabilities are multiplied by 0"
    params = {"text": TEXT, "layer": "2", "head": "3", "step": "probs"}
    assert off in parse(client.get("/", params={**params, "ablate": "2.3"}).text).all_text
    page = parse(client.get("/", params=params).text).all_text
    assert off not in page and "on its favourite token" in page


def test_the_output_export_carries_both_runs(client: TestClient) -> None:
    off = client.get("/export/output.json", params={"text": TEXT, "ablate": "1.1"}).json()
    on = client.get("/export/output.json", params={"text": TEXT}).json()
    assert [t["name"] for t in off["tables"]] == ["logits", "clean.logits"]
    assert (
        off["tables"][1]["values"] == on["tables"][0]["values"]
    )  # the clean run is the run with all heads on
    assert off["tables"][0]["values"] != on["tables"][0]["values"]
    csv = client.get("/export/output.csv", params={"text": TEXT, "ablate": "1.1", "tensor": "clean.logits"})
    assert csv.status_code == 200 and csv.text.count("\n") == 1 + len(on["tables"][0]["values"])
    svg = client.get("/export/output.svg", params={"text": TEXT, "ablate": "1.1"}).text
    assert "heads 1.1 switched off" in svg


def test_the_heads_panel_is_the_sweep_and_each_square_switches_its_head(
    client: TestClient, gpt2: GPT2
) -> None:
    r = client.get("/", params={"text": TEXT, "view": "heads", "ablate": "2.2"})
    assert r.status_code == 200
    page = parse(r.text)
    sweep = gpt2.head_sweep([t.id for t in gpt2.tokenize(TEXT)])
    squares = page.all("a", data_block="*", data_head="*", data_value="*")
    assert len(squares) == gpt2.config.n_layer * gpt2.config.n_head
    shown = {(int(a["data-block"]), int(a["data-head"])): a["aria-label"].split(" pp:")[0] for a in squares}
    decimals = {len(t.split(".")[1]) for t in shown.values() if "." in t}
    assert len(decimals) <= 1  # one rounding for the whole grid, from its largest change
    step = 10.0 ** -(decimals.pop() if decimals else 3)  # "0": rounds to zero at the finest step (3 decimals)
    for a in squares:
        b, h = int(a["data-block"]), int(a["data-head"])
        assert float(a["data-value"]) == pytest.approx(sweep.change[b - 1, h - 1], abs=1e-9)
        heads = query(a["href"]).get("ablate", [""])[0]
        if (b, h) != (2, 2):  # the number it prints, rounded to the grid's decimals
            assert float(shown[b, h].replace("\u2212", "-")) == pytest.approx(
                sweep.change[b - 1, h - 1] * 100, abs=step / 2 + 1e-9
            )
        if (b, h) == (2, 2):
            assert heads == "" and "off" in a["class"]  # switched off now: the link switches it back on
        else:
            assert heads == ",".join(f"{x}.{y}" for x, y in sorted({(2, 2), (b, h)}))
    summary = page.one("p", data_token="*")
    assert int(summary["data-token"]) == sweep.token and float(summary["data-prob"]) == pytest.approx(
        sweep.prob
    )
    movers = [
        (int(m["data-block"]), int(m["data-head"])) for m in page.all("li", data_block="*", data_change="*")
    ]
    order = np.argsort(-np.abs(sweep.change), axis=None, kind="stable")[:5]
    assert movers == [(int(k) // 4 + 1, int(k) % 4 + 1) for k in order]
    csv = client.get("/export/heads.csv", params={"text": TEXT}).text.splitlines()
    assert csv[0] == "block,head 1,head 2,head 3,head 4"
    assert np.allclose(np.array([[float(v) for v in line.split(",")[1:]] for line in csv[1:]]), sweep.change)


@pytest.mark.parametrize(
    ("change", "scale", "text"),
    [
        (0.123, 0.2, "+12.3"),
        (-0.005, 0.2, "\u22120.5"),
        (-0.005, 0.009, "\u22120.50"),
        (-0.000066, 0.000066, "\u22120.007"),
        (0.0000004, 0.000066, "0"),
        (-0.0000004, 0.000066, "0"),
        (0.0, 0.0, "0"),
    ],
)
def test_a_square_prints_as_many_decimals_as_its_grid_needs(change: float, scale: float, text: str) -> None:
    assert square_text(change, scale) == text


@pytest.mark.parametrize(
    ("ablate", "message"),
    [
        ("3.1", "There is no head 1 in block 3: blocks are 1 to 2 and heads 1 to 4"),
        ("1.5", "There is no head 5 in block 1"),
        ("1.0", "There is no head 0 in block 1"),
        ("1,2", "'1' is not, so it was left out"),
        ("1.2.3", "'1.2.3' is not"),
        ("a.b", "'a.b' is not"),
        ("<b>1.1</b>", "'<b>1.1</b>' is not"),
    ],
)
def test_bad_heads_get_a_message_and_a_400_never_a_500(client: TestClient, ablate: str, message: str) -> None:
    r = client.get("/", params={"text": TEXT, "ablate": ablate})
    assert r.status_code == 400
    assert message in parse(r.text).all_text
    assert "<b>1.1</b>" not in r.text  # escaped
    api = client.get("/api/predict", params={"text": TEXT, "ablate": ablate})
    assert api.status_code == 400 and message in api.json()["detail"]
    assert (
        client.get("/api/trace", params={"text": TEXT, "ablate": ablate, "names": "logits"}).status_code
        == 400
    )


def test_every_head_off_is_a_page_and_repeats_count_once(client: TestClient) -> None:
    every = ",".join(f"{b}.{h}" for b in (1, 2) for h in (1, 2, 3, 4))  # the tiny model's 8 heads
    r = client.get("/", params={"text": TEXT, "ablate": ",".join([every] * 3)})
    assert r.status_code == 200
    assert query(parse(r.text).one("input", id="permalink")["value"])["ablate"] == [every]


def test_the_bound_on_heads_off_is_said(gpt2: GPT2) -> None:
    from app.state import Limits, parse_heads

    limits = Limits(n_layer=12, n_head=12, vocab_size=50257, max_chars=400, model="m", tour_steps=21)
    messages: list[str] = []
    heads = parse_heads(",".join(f"{b}.{h}" for b in range(1, 3) for h in range(1, 13)), limits, messages)
    assert len(heads) == MAX_ABLATE and heads[0] == (1, 1) and heads[-1] == (2, 4)
    assert messages == [
        f"At most {MAX_ABLATE} heads can be switched off at once; the first {MAX_ABLATE} were kept."
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ablate=st.text(alphabet="0123456789.,- x", max_size=12),
    patch=st.text(alphabet="0123456789.-x", max_size=6),
    text2=st.text(max_size=12),
    view=st.sampled_from(["attention", "heads", "compare"]),
)
def test_any_intervention_values_give_a_page_or_a_400(client: TestClient, ablate, patch, text2, view) -> None:
    params = {"text": TEXT, "ablate": ablate, "patch": patch, "text2": text2, "view": view}
    r = client.get("/", params=params)
    assert r.status_code in (200, 400)
    api = client.get(
        "/api/predict", params={"text": TEXT, "ablate": ablate, "patch": patch, "patch_from": text2 or "x"}
    )
    assert api.status_code in (200, 400)


def test_the_api_traces_with_heads_off_and_documents_its_parameters(client: TestClient, gpt2: GPT2) -> None:
    names = "block1.attn.probs,logits"
    r = client.get("/api/trace", params={"text": TEXT, "ablate": "2.3,1.1", "names": names})
    assert r.status_code == 200
    body = r.json()
    assert body["intervention"]["ablate"] == "1.1,2.3"
    ids = [t.id for t in gpt2.tokenize(TEXT)]
    want = gpt2.trace(ids, Intervention(ablate=frozenset({(0, 0), (1, 2)})))
    probs = np.array(body["tensors"]["block1.attn.probs"], dtype=float)
    assert not np.nan_to_num(probs[2]).any()  # head 3 of block 2: multiplied by 0
    np.testing.assert_allclose(np.nan_to_num(probs), np.nan_to_num(want["block1.attn.probs"]), atol=1e-6)
    np.testing.assert_allclose(np.array(body["tensors"]["logits"]), want["logits"], atol=1e-5)
    assert not np.allclose(want["logits"], gpt2.trace(ids)["logits"])
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/trace", "/api/predict"):  # the same parameters on both, each described
        params = {p["name"]: p for p in paths[path]["get"]["parameters"]}
        for name in ("ablate", "patch", "patch_from"):
            assert params[name]["description"], (path, name)
        assert "block.head" in params["ablate"]["description"], path
