"""Fuzzing: schemathesis over the JSON API's OpenAPI schema, hypothesis text through every panel.

Bounded example counts keep this to seconds; a server error (5xx) anywhere fails the test.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from app.state import VIEWS
from model import GPT2, load_model
from tests.web.conftest import parse


def tiny_app() -> FastAPI:
    gpt2 = GPT2(load_model("tiny"))
    return create_app(Settings(max_tokens=64, max_chars=300), Serving(gpt2=gpt2, source="tiny"))


schema = schemathesis.openapi.from_asgi("/openapi.json", tiny_app())


@schema.parametrize()
@pytest.mark.filterwarnings("error::RuntimeWarning")  # an overflow in the numbers is a bug too
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_never_answers_a_server_error(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error])


@pytest.fixture(scope="module")
def client() -> TestClient:
    with TestClient(tiny_app()) as c:
        yield c  # type: ignore[misc]


# any text a keyboard, a paste or a broken encoder could produce (hypothesis leaves out lone surrogates,
# which a URL cannot carry: their bytes arrive as U+FFFD, tested in test_security.py)
TEXT = st.text(min_size=1, max_size=40)


@given(text=TEXT, view=st.sampled_from(VIEWS), layer=st.integers(1, 2), head=st.integers(1, 4))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_goes_through_tokenize_trace_and_render(
    client: TestClient, text: str, view: str, layer: int, head: int
) -> None:
    r = client.get("/", params={"text": text, "view": view, "layer": str(layer), "head": str(head)})

    assert r.status_code in (200, 400)
    page = parse(r.text)
    assert page.one("input", id="text")["value"] == text.replace("\r\n", "\n")
    if r.status_code == 200:  # traced and drawn: the panel and the output are there
        assert page.one("section", id="output")
        assert page.all("svg")


@given(
    text=TEXT,
    temperature=st.floats(0.05, 5),
    top_k=st.integers(1, 50257),
    top_p=st.floats(0.01, 1),
    target=st.sampled_from(["output", "share"]),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_and_sampling_goes_through_the_live_update(
    client: TestClient, text: str, temperature: float, top_k: int, top_p: float, target: str
) -> None:
    params = {"text": text, "temperature": str(temperature), "top_k": str(top_k), "top_p": str(top_p)}
    r = client.get("/", params=params, headers={"HX-Request": "true", "HX-Target": target})

    assert r.status_code in (200, 400)
    page = parse(r.text)
    if target == "output":  # the output panel, at every temperature
        assert page.one("section", id="output")
    else:  # the settled slider: the permalink and the messages
        assert page.one("div", id="messages")


# every target htmx asks the page for (the live output, the settled slider's permalink, a panel), with
# texts that cannot be traced and controls out of range
TARGETS = ["output", "share", "panel", "not-a-target"]
BAD = [{}, {"temperature": "nan"}, {"top_k": "-1"}, {"view": "heads"}, {"ablate": "1.1"}, {"tour": "99"}]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("text", ["", " ", "<b>x</b>" * 200])
def test_every_live_target_answers_bad_input_with_a_message(
    client: TestClient, target: str, text: str
) -> None:
    for extra in BAD:
        headers = {"HX-Request": "true", "HX-Target": target}
        r = client.get("/", params={"text": text, **extra}, headers=headers)
        assert r.status_code == 400, (extra, r.status_code)
        assert parse(r.text).all("p", **{"class": "error"}), extra  # in the messages swapped in
        assert "<b>x</b>" not in r.text


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_a_live_update_without_a_text_says_so_and_keeps_the_filters(client: TestClient, text: str) -> None:
    # no trace to draw: the filters' other inputs still go back out of band, bounded by the model's vocabulary
    params = {"text": text, "top_k": "7", "top_k_slider": "3", "top_k_slider_at": "1"}
    r = client.get("/", params=params, headers={"HX-Request": "true", "HX-Target": "output"})

    assert r.status_code == 400
    page = parse(r.text)
    assert page.one("section", id="output")
    typed = page.one("input", id="top_k")
    assert typed["hx-swap-oob"] == "true"
    assert typed["max"] == str(client.app.state.site.serving.gpt2.config.vocab_size)
