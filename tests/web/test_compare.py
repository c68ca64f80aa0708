"""Two prompts side by side (`view=compare`) and patching: the links round-trip, the numbers are the runs'
(and /api/predict's), every square of the grid is the run it names, bad values get a 400 with a sentence."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model import GPT2, Intervention, Patch
from model.sampling import softmax
from tests.web.conftest import HX, parse

A, B = "The doctor said that he", "The doctor said that she"
COMPARE = {"text": A, "text2": B, "view": "compare"}


def query(href: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(href.replace("&amp;", "&")).query, keep_blank_values=True)


def runs(gpt2: GPT2, a: str = A, b: str = B):
    ids_a, ids_b = ([t.id for t in gpt2.tokenize(x)] for x in (a, b))
    return ids_a, ids_b, gpt2.trace(ids_a), gpt2.trace(ids_b)


def test_both_prompts_side_by_side_with_what_differs_marked(client: TestClient, gpt2: GPT2) -> None:
    r = client.get("/", params={**COMPARE, "layer": "2", "head": "3"})
    assert r.status_code == 200
    page = parse(r.text)
    ids_a, ids_b, a, b = runs(gpt2)
    assert (
        len(page.all("div", data_side="A")) == len(page.all("div", data_side="B")) == 2
    )  # tokens, predictions
    chips = page.all("li", data_position="*")
    assert [int(c["data-id"]) for c in chips] == ids_a + ids_b
    differs = [int(c["data-position"]) for c in chips if "differs" in c["class"]]
    assert differs == [5, 5]  # he / she
    heatmaps = page.all("svg", data_name="block1.attn.probs")
    assert len(heatmaps) == 2  # the chosen head's attention in each prompt
    assert page.all("svg", data_name="B - A block1.attn.probs")  # and what differs
    preds = page.all("tr", data_prob="*")
    pa, pb = softmax(a.logits), softmax(b.logits)
    for row, want in zip(preds[:8], a.logit_order()[:8], strict=True):
        assert int(row["data-id"]) == want and float(row["data-prob"]) == pytest.approx(pa[want])
    for row, want in zip(preds[8:], b.logit_order()[:8], strict=True):
        assert int(row["data-id"]) == want and float(row["data-prob"]) == pytest.approx(pb[want])
    api_b = {
        c["id"]: c["prob"] for c in client.get("/api/predict", params={"text": B, "n": "20"}).json()["top"]
    }
    for row in preds[8:]:
        assert float(row["data-prob"]) == pytest.approx(api_b[int(row["data-id"])], abs=1e-12)


def test_a_patch_moves_b_as_the_api_says(client: TestClient, gpt2: GPT2) -> None:
    r = client.get("/", params={**COMPARE, "patch": "1.5"})
    assert r.status_code == 200
    result = parse(r.text).one("div", data_site="1", data_token="5")
    _, ids_b, a, b = runs(gpt2)
    top = int(a.logit_order()[0])
    patched = gpt2.trace(ids_b, Intervention(patch=(Patch.from_trace(a, "block0.resid.out", 4),)))
    p_a, p_b, p_p = (float(softmax(t.logits)[top]) for t in (a, b, patched))
    assert float(result["data-p-a"]) == pytest.approx(p_a)
    assert float(result["data-p-b"]) == pytest.approx(p_b)
    assert float(result["data-p-patched"]) == pytest.approx(p_p)
    if abs(p_a - p_b) >= 1e-3:
        assert float(result["data-share"]) == pytest.approx((p_p - p_b) / (p_a - p_b))
    api = client.get("/api/predict", params={"text": B, "patch_from": A, "patch": "1.5", "n": "50"}).json()
    assert api["intervention"] == {"ablate": "", "patch": "1.5", "patch_from": A}
    api_probs = {c["id"]: c["prob_all"] for c in api["top"]}
    for row in parse(r.text).all("tr", data_patched="*"):
        if int(row["data-id"]) in api_probs:
            assert float(row["data-patched"]) == pytest.approx(api_probs[int(row["data-id"])], abs=1e-12)


def test_every_square_of_the_grid_is_the_run_it_names_and_links_to_it(client: TestClient, gpt2: GPT2) -> None:
    a_text = "When Mary and John went to the store, John gave a drink to"
    b_text = a_text.replace("John gave", "Mary gave")
    r = client.get("/", params={"text": a_text, "text2": b_text, "view": "compare"})
    assert r.status_code == 200
    ids_a, ids_b, a, b = runs(gpt2, a_text, b_text)
    top = int(a.logit_order()[0])
    p_a, p_b = float(softmax(a.logits)[top]), float(softmax(b.logits)[top])
    squares = parse(r.text).all("a", data_site="*", data_token="*", data_value="*")
    assert len(squares) == (gpt2.config.n_layer + 1) * len(ids_a)
    tensors = ["embed.sum", *(f"block{i}.resid.out" for i in range(gpt2.config.n_layer))]
    for sq in squares:
        site, token = int(sq["data-site"]), int(sq["data-token"])
        one = gpt2.engine.trace(ids_b, Intervention(patch=(Patch.from_trace(a, tensors[site], token - 1),)))
        p = float(softmax(one.logits)[top])
        want = (p - p_b) / (p_a - p_b) if abs(p_a - p_b) >= 1e-3 else p - p_b
        assert float(sq["data-value"]) == pytest.approx(want, rel=1e-5, abs=1e-7), (site, token)
        q = query(sq["href"])
        assert q["patch"] == [f"{site}.{token}"] and q["text"] == [a_text] and q["text2"] == [b_text]
        assert q["view"] == ["compare"]
    same = [sq for sq in squares if int(sq["data-token"]) < 10]  # before "John"/"Mary": the prompts agree
    assert all(abs(float(sq["data-value"])) < 1e-5 for sq in same)


def test_compare_links_and_forms_round_trip(client: TestClient) -> None:
    r = client.get("/", params={**COMPARE, "layer": "2", "head": "3", "ablate": "1.2", "temperature": "0.7"})
    page = parse(r.text)
    permalink = query(page.one("input", id="permalink")["value"])
    assert permalink["text2"] == [B] and permalink["view"] == ["compare"] and permalink["ablate"] == ["1.2"]
    assert permalink["temperature"] == ["0.7"]
    # the patch form: its fields, sent as a browser sends a form, come back as the permalink's patch=
    fields = {i["name"]: i["value"] for i in page.all("input", type="hidden")}
    assert fields["text2"] == B and fields["ablate"] == "1.2" and fields["view"] == "compare"
    sent = client.get("/", params={**fields, "patch_block": "2", "patch_token": "3"}, follow_redirects=False)
    assert sent.status_code == 303
    back = query(sent.headers["location"])
    assert (
        back["patch"] == ["2.3"]
        and back["text"] == [A]
        and back["text2"] == [B]
        and back["ablate"] == ["1.2"]
    )
    again = client.get(sent.headers["location"])
    assert again.status_code == 200 and parse(again.text).one("div", data_site="2", data_token="3")
    # an htmx request is sent to the full page
    hx = client.get("/", params=COMPARE, headers={**HX, "HX-Target": "page"})
    assert hx.headers["HX-Redirect"].startswith("/?text=")
    # the way back to the explainer keeps the state and leaves the patch
    back_link = [a["href"] for a in page.all("a", href="*") if "view=attention" in a["href"]]
    assert back_link and all(query(h)["ablate"] == ["1.2"] for h in back_link)


def test_both_prompts_run_with_the_heads_off(client: TestClient, gpt2: GPT2) -> None:
    r = client.get("/", params={**COMPARE, "ablate": "1.1"})
    ids_a, _, _, _ = runs(gpt2)
    cut = Intervention(ablate=frozenset({(0, 0)}))
    a = gpt2.trace(ids_a, cut)
    preds = parse(r.text).all("tr", data_prob="*")
    top = int(a.logit_order()[0])
    assert int(preds[0]["data-id"]) == top and float(preds[0]["data-prob"]) == pytest.approx(
        softmax(a.logits)[top]
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"patch": "1.6"}, "There is no token 6 in both prompts: A has 5 tokens and B 5"),
        ({"text2": "The doctor", "patch": "0.3"}, "A has 5 tokens and B 2"),
        ({"patch": "3.1"}, "with the block from 0 (the embeddings) to 2"),
        ({"patch": "1"}, "A patch is written block.token"),
        ({"patch": "x.y"}, "'x.y' is not"),
        ({"text2": "x" * 401}, "Second prompt: The text has 401 characters; this server takes at most 400"),
        ({"text2": "hello " * 50}, "Second prompt: The text is 51 tokens long; this server takes at most 40"),
        ({"ablate": "9.9"}, "There is no head 9 in block 9"),
    ],
)
def test_bad_compare_values_get_a_400_with_a_sentence(client: TestClient, params, message) -> None:
    r = client.get("/", params={**COMPARE, **params})
    assert r.status_code == 400
    assert message in parse(r.text).all_text


def test_the_api_refuses_bad_patches_with_a_sentence(client: TestClient) -> None:
    base = {"text": B, "patch_from": A}
    for params, status, message in [
        ({"patch": "1.9"}, 400, "patch position 9 is past the end"),
        ({"patch": "1.2", "patch_from": None}, 400, "patch and patch_from go together"),
        ({"patch": "1.2", "patch_from": "y" * 401}, 400, "patch_from: text has 401 characters"),
        ({"patch": "7.1"}, 400, "A patch is written block.token"),
    ]:
        q = {k: v for k, v in {**base, **params}.items() if v is not None}
        for path in ("/api/predict", "/api/trace"):
            r = client.get(path, params={**q, "names": "logits"} if path == "/api/trace" else q)
            assert r.status_code == status and message in r.json()["detail"], (path, params)


def test_a_patched_trace_from_the_api_is_the_patched_run(client: TestClient, gpt2: GPT2) -> None:
    r = client.get(
        "/api/trace", params={"text": B, "patch_from": A, "patch": "2.4", "names": "block1.resid.out,logits"}
    )
    assert r.status_code == 200
    _, ids_b, a, _ = runs(gpt2)
    body = r.json()
    got = np.array(body["tensors"]["block1.resid.out"])
    np.testing.assert_allclose(got[3], a["block1.resid.out"][3], atol=1e-6)  # A's vector, at B's token 4
    want = gpt2.trace(ids_b, Intervention(patch=(Patch.from_trace(a, "block1.resid.out", 3),)))
    np.testing.assert_allclose(np.array(body["tensors"]["logits"]), want["logits"], atol=1e-5)


def test_a_compare_view_without_a_second_prompt_asks_for_one(client: TestClient) -> None:
    r = client.get("/", params={"text": A, "view": "compare"})
    assert r.status_code == 200
    page = parse(r.text)
    assert page.one("input", id="text2")["value"] == ""
    examples = [a["href"] for a in page.all("a", href="*") if "text2=" in a["href"]]
    assert any(query(h)["text2"] == [B] for h in examples)


def test_a_student_s_second_prompt_is_never_shared_by_a_proxy(client: TestClient) -> None:
    from app.proxy import example_query

    assert example_query(b"text=Data%20visualization%20empowers%20users%20to")
    assert not example_query(
        b"text=Data%20visualization%20empowers%20users%20to&text2=my%20words&view=compare"
    )
    assert not example_query(b"text=Data%20visualization%20empowers%20users%20to&patch_from=mine&patch=1.1")


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("The doctor said that he", "The doctor said that she"),  # a pronoun first, before an article
        ("As the spaceship was approaching the", "As the spaceship is approaching the"),
        ("On the deserted planet they discovered a", "On a deserted planet they discovered a"),
        ("Data visualization empowers users to", "The visualization empowers users to"),  # nothing to swap
        ("The Data", "A Data"),
    ],
)
def test_the_tour_s_second_prompt_changes_one_word(text: str, other: str) -> None:
    from app.views.tour_intervene import counterpart

    assert counterpart(text) == other
