"""Classroom tests: limits, back-pressure, headers and hostile input, each on a fresh app with the tiny model.

Every app gets its own GPT2 (a cheap ONNX session over the same loaded weights): the app's run queue is
attached to its model, so apps with different limits never share one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.loading import Serving
from app.main import create_app
from app.settings import Settings
from model import GPT2, LoadedModel, load_model

TEXT = "Data visualization empowers users to"
HX = {"HX-Request": "true"}

MakeClient = Callable[..., TestClient]


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    return load_model("tiny")


@pytest.fixture
def make_client(tiny: LoadedModel) -> Iterator[MakeClient]:
    """make_client(**settings): a started TestClient of a new app serving the tiny model."""
    clients: list[TestClient] = []

    def make(**settings: Any) -> TestClient:
        gpt2 = GPT2(tiny)
        app = create_app(Settings(**settings), Serving(gpt2=gpt2, source=tiny.description))
        client = TestClient(app).__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    """An app with the default settings."""
    return make_client()


def messages(html: str) -> list[str]:
    """The error and notice sentences of the page's messages box, in order."""
    from tests.web.conftest import parse

    assert parse(html).one("div", id="messages")
    start = html.index(">", html.index('id="messages"')) + 1
    box = parse(html[start : html.index("</div>", start)])
    return [s.strip() for s in box.text if s.strip()]
