"""The JSON API returns the Trace's own numbers, and a 4xx with a `detail` for bad input."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model import GPT2, sample
from tests.web.conftest import parse

TEXT = "Data visualization empowers users to"


def test_trace_returns_tokens_and_the_named_tensors(client: TestClient, gpt2: GPT2) -> None:
    r = client.get("/api/trace", params={"text": TEXT, "names": "embed.sum,block1.attn.probs"})
    assert r.status_code == 200
    body = r.json()
    assert body["ids"] == [6601, 32704, 795, 30132, 2985, 284]
    assert body["tokens"][1]["label"] == " visualization"
    assert set(body["tensors"]) == {"embed.sum", "block1.attn.probs"}
    trace = gpt2.trace(body["ids"])
    assert np.allclose(body["tensors"]["block1.attn.probs"], trace["block1.attn.probs"], atol=1e-7)
    assert body["shapes"]["block0.mlp.act"] == [6, 256]
    assert body["trained"] is False


def test_trace_globs_and_masked_values_become_null(client: TestClient) -> None:
    body = client.get("/api/trace", params={"text": "one two three", "names": "block*.attn.masked"}).json()
    assert set(body["tensors"]) == {"block0.attn.masked", "block1.attn.masked"}
    first_head = body["tensors"]["block0.attn.masked"][0]
    assert first_head[0][1] is None and first_head[1][0] is not None


def test_trace_everything_by_default(client: TestClient, gpt2: GPT2) -> None:
    body = client.get("/api/trace", params={"text": "hi"}).json()
    assert set(body["tensors"]) == set(gpt2.trace(body["ids"]).names)


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"text": ""}, 400, "text is empty"),
        ({"text": "x" * 401}, 400, "characters"),
        ({"text": "word " * 60}, 400, "tokens; the most is 40"),
        ({"text": TEXT, "names": "nothing.*"}, 400, "no tensor matches"),
        ({"text": TEXT, "model": "gpt2-xl"}, 400, "this server runs the model"),
    ],
)
def test_trace_bad_input(client: TestClient, params: dict[str, str], status: int, says: str) -> None:
    r = client.get("/api/trace", params=params)
    assert r.status_code == status
    assert says in r.json()["detail"]


def test_trace_needs_text(client: TestClient) -> None:
    r = client.get("/api/trace")
    assert r.status_code == 422
    assert r.json()["detail"]


def test_predict_matches_the_sampler(client: TestClient, gpt2: GPT2) -> None:
    params = {"text": TEXT, "temperature": "0.7", "top_k": "20", "seed": "3", "n": "5"}
    body = client.get("/api/predict", params=params).json()
    s = sample(gpt2.trace(body_ids := [t["id"] for t in body["tokens"]]).logits, 0.7, top_k=20, seed=3)
    assert body_ids == [6601, 32704, 795, 30132, 2985, 284]
    assert body["kept_count"] == 20
    assert body["kept_mass"] == pytest.approx(s.kept_mass)
    assert body["sampled"]["id"] == s.token
    assert [c["id"] for c in body["top"]] == [int(i) for i in s.top(5)]
    assert [c["prob"] for c in body["top"]] == pytest.approx([s.probs[i] for i in s.top(5)])


def test_predict_draws_by_the_ranking_the_docs_state(client: TestClient, gpt2: GPT2) -> None:
    """A filter that keeps everything draws what no filter draws, for the API as for the page; the drawn
    token's rank is its place in the ranking; the API's docs state the ranking and the tie rule."""
    order = gpt2.trace(gpt2.tokenizer.encode(TEXT)).logit_order()
    for seed in range(6):
        base = {"text": TEXT, "temperature": "3", "seed": str(seed)}
        plain = client.get("/api/predict", params=base).json()["sampled"]
        for extra in ({"top_p": "1"}, {"top_k": "50257"}):
            assert client.get("/api/predict", params={**base, **extra}).json()["sampled"] == plain
        assert plain["rank"] == order.tolist().index(plain["id"]) + 1
        page = parse(client.get("/", params=base).text).one("section", id="output")
        assert int(page["data-sampled"]) == plain["id"]
    params = client.get("/openapi.json").json()["paths"]["/api/predict"]["get"]["parameters"]
    top_k = next(p for p in params if p["name"] == "top_k")
    assert "exactly k, a tie at the cut going to the lower id" in top_k["description"]


def test_predict_greedy_takes_the_top_token(client: TestClient, gpt2: GPT2) -> None:
    body = client.get("/api/predict", params={"text": TEXT, "greedy": "true"}).json()
    assert body["sampled"]["id"] == body["top"][0]["id"]


@pytest.mark.parametrize(
    "params",
    [
        {"temperature": "0"},
        {"temperature": "-1"},
        {"temperature": "hot"},
        {"temperature": "nan"},
        {"top_k": "0"},
        {"top_k": "60000"},
        {"top_p": "1.5"},
        {"top_p": "0"},
        {"seed": "-2"},
        {"n": "1000"},
    ],
)
def test_predict_bad_controls_are_4xx(client: TestClient, params: dict[str, str]) -> None:
    r = client.get("/api/predict", params={"text": TEXT, **params})
    assert r.status_code == 422
    assert r.json()["detail"]


def test_health(client: TestClient) -> None:
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "model": "tiny", "trained": False, "fallback": False}


def test_openapi_documents_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/trace", "/api/predict", "/healthz"} <= set(paths)
    assert "/" not in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-security-policy"].startswith("default-src 'self';")  # as every page
    assert "<script>" not in docs.text and "https://" not in docs.text
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/favicon.png"):
        assert asset in docs.text and client.get(asset).status_code == 200
    init = client.get("/docs/init.js")
    assert init.headers["content-type"].startswith("text/javascript") and "url: '/openapi.json'" in init.text
    assert client.get("/docs/secrets.txt").status_code == 404
    page = client.get("/api")
    assert page.status_code == 200
    assert "/api/predict" in page.text


def test_app_loads_its_model_at_startup(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.main import create_app
    from app.settings import Settings

    monkeypatch.setenv("GLASSBOX_CACHE", str(tmp_path))
    app = create_app(Settings(model="tiny", fallback=""))
    with TestClient(app) as c:  # the lifespan loads the model named by the settings
        assert c.get("/healthz").json()["model"] == "tiny"
        assert c.get("/", params={"text": TEXT}).status_code == 200
