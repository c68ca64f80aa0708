"""The lecture hall's view-model: which links open on a panel, and where the projector's buttons go."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.state import STEPS, State
from app.views.present import opens_panel, turns
from model import GPT2
from tests.web.conftest import parse
from tests.web.test_weights import squares_of

TEXT = "Data visualization empowers users to see patterns"


def query(href: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(href).query).items()}


def test_only_a_link_naming_a_panel_opens_on_it() -> None:
    assert not opens_panel(State(text="a b"))  # the front page: the overview first
    assert not opens_panel(State(text="a b", temperature=2.0, present=True))  # sampling names no panel
    for named in ({"view": "mlp"}, {"step": "probs"}, {"layer": 2}, {"head": 3}, {"token": 1}):
        assert opens_panel(State(text="a b", **named)), named


def test_the_buttons_walk_step_block_and_head_and_stop_at_the_ends() -> None:
    first = turns(State(text="a b", present=True), n_layer=2, n_head=4)
    assert [(t.label, t.key, t.forward, t.link is None) for t in first] == [
        ("step", "j", False, True),  # no step before the first
        ("step", "k", True, False),
        ("block", "u", False, True),
        ("block", "i", True, False),
        ("head", "h", False, True),
        ("head", "l", True, False),
    ]
    assert query(first[1].link.href)["step"] == STEPS[1]
    assert query(first[3].link.href)["layer"] == "2" and query(first[5].link.href)["head"] == "2"
    assert all(query(t.link.href)["present"] == "1" for t in first if t.link)  # the projector stays on

    last = turns(State(text="a b", step=STEPS[-1], layer=2, head=4), n_layer=2, n_head=4)
    assert [t.link is None for t in last] == [False, True, False, True, False, True]
    assert query(last[0].link.href)["step"] == STEPS[-2]
    assert query(last[2].link.href).get("layer", "1") == "1" and query(last[4].link.href)["head"] == "3"


def test_from_another_panel_the_step_buttons_open_the_attention_steps() -> None:
    back, forward, *_ = turns(State(text="a b", view="mlp", layer=2), n_layer=2, n_head=4)
    assert back.link is None  # no attention step is shown: nothing to go back to
    q = query(forward.link.href)
    assert q.get("view", "attention") == "attention" and q.get("step", "qkv") == STEPS[0]


@pytest.mark.parametrize(
    ("view", "name"), [("embedding", "embed.sum"), ("residual", "block0.ln1"), ("kv", "block1.q")]
)
def test_the_projector_plays_8_numbers_of_a_vector_the_desk_16(
    client: TestClient, gpt2: GPT2, view: str, name: str
) -> None:
    # the same numbers, fewer of them: each square is then large enough to read on a projected screen
    trace = gpt2.trace([t.id for t in gpt2.tokenize(TEXT)])
    want = trace[name][-1] if view != "kv" else trace[name][0, -1]  # the last token (kv: head 1)
    for present, count in ((False, 16), (True, 8)):
        state = State(text=TEXT, view=view, layer=2 if view == "kv" else 1, present=present)  # type: ignore[arg-type]
        page = parse(client.get(state.url()).text)
        shown = squares_of(page, "data-vector", name)
        assert [int(i) for i, _ in shown] == list(range(count))
        assert np.allclose([float(v) for _, v in shown], want[:count], rtol=1e-5, atol=1e-6)
        total = gpt2.config.n_embd if view != "kv" else gpt2.config.head_dim
        assert count == total or f"{count} of {total} numbers" in page.all_text  # the caption says how many
