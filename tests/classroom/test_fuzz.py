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


@given(text=TEXT, temperature=st.floats(0.05, 5), top_k=st.integers(1, 50257), top_p=st.floats(0.01, 1))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_and_sampling_goes_through_the_live_update(
    client: TestClient, text: str, temperature: float, top_k: int, top_p: float
) -> None:
    params = {"text": text, "temperature": str(temperature), "top_k": str(top_k), "top_p": str(top_p)}
    r = client.get("/", params=params, headers={"HX-Request": "true", "HX-Target": "output"})

    assert r.status_code in (200, 400)
    assert parse(r.text).one("section", id="output")
