"""After Generate, the drawn token slides into the text (the motion kit): the part that plays is the real
drawn token, with the probability the model gave it, and nothing plays before a token is generated."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from model import GPT2
from tests.web.conftest import parse

TEXT = "Data visualization empowers users to"


def entering(html: str) -> list[dict[str, str]]:
    """The attributes of the parts that play in (class `frame f1 enter`) and of the elements inside them."""
    out, depth = [], 0
    for tag, a in parse(html).tags:
        if "enter" in a.get("class", "").split():
            depth = 1
            out.append({"tag": tag, **a})
        elif depth and tag in ("a", "span") and ("data-id" in a or "data-prob" in a):
            out.append({"tag": tag, **a})
    return out


def test_the_generated_token_plays_into_the_text_with_its_own_numbers(client: TestClient, gpt2: GPT2) -> None:
    page = client.get("/", params={"text": TEXT, "action": "generate"})
    assert page.status_code == 200
    html = page.text
    gen = [int(i) for i in parse(html).one("input", name="gen")["value"].split(",")]
    assert len(gen) == 1
    # one player for the tokens section, of two frames: the text before, the text with the drawn token
    assert [r["value"] for r in parse(html).all("input", type="radio", name="arrive-frame")] == [
        "play",
        "0",
        "1",
    ]
    parts = entering(html)
    chip = next(p for p in parts if p["tag"] == "a")
    assert int(chip["data-id"]) == gen[0] and int(chip["data-position"]) == len(gpt2.tokenize(TEXT)) + 1
    step = next(p for p in parts if p["tag"] == "li" and "data-prob" in p)
    logits = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)]).logits.astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    assert int(step["data-id"]) == gen[0]
    assert abs(float(step["data-prob"]) - probs[gen[0]]) < 1e-6  # the model's probability at T=1, no filter
    assert len([p for p in parts if "enter" in p.get("class", "").split()]) == 2  # the chip and its step


def test_nothing_plays_in_before_a_token_is_generated(client: TestClient) -> None:
    html = client.get("/", params={"text": TEXT}).text
    assert entering(html) == [] and 'name="arrive-frame"' not in html
